"""SelfSubjectAccessReviews (authorization.k8s.io/v1, cluster-scoped, create only): "may I?",
answered by the same RBAC decision a real request of the requesting user gets. This is what
`kubectl auth can-i` asks. Never stored.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from podfleet.simulator.apiserver.authentication import ADMIN, USER_KEY, UserInfo
from podfleet.simulator.apiserver.authorization import RbacAuthorizer
from podfleet.simulator.apiserver.body import read_body
from podfleet.simulator.apiserver.errors import bad_request, invalid, invalid_object
from podfleet.simulator.apiserver.kind import ApiContext, Kind
from podfleet.simulator.apiserver.requestinfo import RequestInfo
from podfleet.simulator.apiserver.responses import dumps, json_response
from podfleet.simulator.apiserver.validation import decode_object
from podfleet.simulator.audit import AccessRequest

_KIND = "SelfSubjectAccessReview"
_API_VERSION = "authorization.k8s.io/v1"


def access_request(user: UserInfo, spec: dict[str, Any]) -> tuple[AccessRequest, str]:
    """The request a review's spec describes, and the object name it asks about."""
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if isinstance(resource, dict) and not non_resource:
        return AccessRequest(
            user.name,
            str(resource.get("verb", "")),
            str(resource.get("group", "")),
            str(resource.get("resource", "")),
            str(resource.get("subresource", "")),
            str(resource.get("namespace", "")),
        ), str(resource.get("name", ""))
    if isinstance(non_resource, dict) and not resource:
        verb, path = str(non_resource.get("verb", "")), str(non_resource.get("path", ""))
        return AccessRequest(user.name, verb, "", "", "", "", path or "/"), ""
    raise invalid_object(_KIND, "", [invalid(
        "spec.resourceAttributes", resource,
        "exactly one of nonResourceAttributes or resourceAttributes must be specified")])


class SelfSubjectAccessReviewKind(Kind):
    group = "authorization.k8s.io"
    resource = "selfsubjectaccessreviews"
    singular = "selfsubjectaccessreview"
    kind = _KIND
    namespaced = False
    verbs = ("create",)
    stored = False

    async def respond(
        self, context: ApiContext, request: web.Request, info: RequestInfo
    ) -> web.StreamResponse:
        runtime = context.runtime
        body = await read_body(request, runtime.config.max_body_bytes)
        review = decode_object(body, request.content_type, _KIND, _API_VERSION)
        spec = review.get("spec")
        if not isinstance(spec, dict):
            raise bad_request("spec: Required value")
        user = request.get(USER_KEY, ADMIN)
        asked, name = access_request(user, spec)
        decision = RbacAuthorizer(runtime.store).authorize(user, asked, name)
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        review["metadata"] = {"creationTimestamp": None}
        review["status"] = status
        return json_response(dumps(review), status=201)
