"""ServiceAccounts (core/v1, namespaced), with the TokenRequest subresource
`serviceaccounts/{name}/token` (create only) that mints a token for one.

A minted token authenticates as `system:serviceaccount:<ns>:<name>` (`authentication.py`)
until its ServiceAccount is deleted; its requests are authorised by RBAC. `kubectl create
token NAME` works against it.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from podfleet.simulator.apiserver.body import read_body
from podfleet.simulator.apiserver.errors import bad_request, invalid, invalid_object, not_found
from podfleet.simulator.apiserver.kind import ApiContext, Kind, Subresource
from podfleet.simulator.apiserver.requestinfo import RequestInfo
from podfleet.simulator.apiserver.responses import dumps, json_response
from podfleet.simulator.apiserver.validation import decode_body, validate_metadata
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import SERVICEACCOUNTS

#: A token's lifetime when the request asks for none (the API server's default).
DEFAULT_EXPIRATION_S = 3600


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


async def request_token(
    context: ApiContext, request: web.Request, info: RequestInfo
) -> web.StreamResponse:
    """`POST .../serviceaccounts/{name}/token`: a TokenRequest answered with a fresh token."""
    runtime = context.runtime
    account = runtime.store.get(SERVICEACCOUNTS, info.namespace, info.name)
    if account is None:
        raise not_found(SERVICEACCOUNTS, info.name)
    body = await read_body(request, runtime.config.max_body_bytes)
    review = decode_body(body, request.content_type, "TokenRequest") if body.strip() else {}
    if not isinstance(review, dict):
        raise bad_request("the object provided is unrecognized (must be of type TokenRequest)")
    spec = dict(review.get("spec") or {})
    expiration = spec.get("expirationSeconds") or DEFAULT_EXPIRATION_S
    if not isinstance(expiration, int) or expiration < 600:
        raise invalid_object("TokenRequest", info.name, [invalid(
            "spec.expirationSeconds", expiration,
            "may not specify a duration less than 10 minutes")])
    spec["expirationSeconds"] = expiration
    spec.setdefault("audiences", ["https://kubernetes.default.svc"])
    spec.setdefault("boundObjectRef", None)
    now = time.time()
    answer = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": info.name, "namespace": info.namespace,
                     "creationTimestamp": _stamp(now)},
        "spec": spec,
        "status": {
            "token": runtime.tokens.mint(info.namespace, info.name, account.uid),
            "expirationTimestamp": _stamp(now + expiration),
        },
    }
    return json_response(dumps(answer), status=201)


class ServiceAccountKind(Kind):
    resource = SERVICEACCOUNTS
    singular = "serviceaccount"
    kind = "ServiceAccount"
    namespaced = True
    short_names = ("sa",)
    subresources = (
        Subresource("token", kind="TokenRequest", verbs=("create",), serve=request_token),
    )

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        errors = validate_metadata(obj["metadata"])
        if errors:
            raise invalid_object("ServiceAccount", str(obj["metadata"].get("name", "")), errors)
