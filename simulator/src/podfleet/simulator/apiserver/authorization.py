"""RBAC: whether a user may do what a request asks, from the Roles, ClusterRoles and their
bindings in the store (rbac.authorization.k8s.io/v1), as Kubernetes' RBAC authorizer decides.

A request is allowed when a rule of a role bound to the user matches it; nothing denies.
ClusterRoleBindings grant their ClusterRole everywhere; a RoleBinding grants its Role or
ClusterRole in its own namespace only. A rule matches when its `verbs`, `apiGroups` and
`resources` (`pods/log` for a subresource, `*/log`, `*`) name the request, and, when it has
`resourceNames`, the request names one of them (so list, watch and create, which name no
object, never match such a rule). Non-resource paths match `nonResourceURLs` (exact, `*`, or a
`prefix*`) with the lower-cased HTTP method as verb.

The default ClusterRoles every cluster binds to `system:authenticated` are built in (not
stored objects): `system:discovery` and `system:public-info-viewer` (GET of /version, /api*,
/apis*, /openapi*, /healthz, /livez, /readyz) and `system:basic-user` (create
selfsubjectaccessreviews and selfsubjectrulesreviews).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from podfleet.simulator.apiserver.authentication import UserInfo
from podfleet.simulator.apiserver.errors import ApiError
from podfleet.simulator.audit import AccessRequest
from podfleet.simulator.store import ObjectStore

RBAC_GROUP = "rbac.authorization.k8s.io"
CLUSTERROLES = "clusterroles"
CLUSTERROLEBINDINGS = "clusterrolebindings"
ROLES = "roles"
ROLEBINDINGS = "rolebindings"

_DISCOVERY_PATHS = (
    "/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*",
    "/version", "/version/", "/healthz", "/livez", "/readyz",
)
#: The rules of the default ClusterRoles bound to every authenticated user.
BUILT_IN_RULES: tuple[Mapping[str, Any], ...] = (
    {"nonResourceURLs": list(_DISCOVERY_PATHS), "verbs": ["get"]},
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        "verbs": ["create"],
    },
)


@dataclass(frozen=True)
class Decision:
    """Allowed or not; `reason` says why (which binding allowed, or what could not be read)."""

    allowed: bool
    reason: str = ""


def rule_allows(rule: Mapping[str, Any], request: AccessRequest, name: str) -> bool:
    """Whether one PolicyRule matches the request (`name`: the object named, "" for none)."""
    verbs = rule.get("verbs") or ()
    if "*" not in verbs and request.verb not in verbs:
        return False
    if request.path:
        return _path_matches(rule.get("nonResourceURLs") or (), request.path)
    groups = rule.get("apiGroups") or ()
    if "*" not in groups and request.api_group not in groups:
        return False
    if not _resource_matches(rule.get("resources") or (), request.resource_name,
                             request.subresource):
        return False
    names = rule.get("resourceNames") or ()
    return not names or name in names


def _resource_matches(resources: Sequence[str], combined: str, subresource: str) -> bool:
    for candidate in resources:
        if candidate in ("*", combined):
            return True
        if subresource and candidate == "*/" + subresource:
            return True
    return False


def _path_matches(urls: Sequence[str], path: str) -> bool:
    for url in urls:
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def subject_matches(subject: Mapping[str, Any], user: UserInfo, binding_namespace: str) -> bool:
    """Whether a binding's subject names the user (a ServiceAccount subject without a
    namespace means the binding's own)."""
    kind = subject.get("kind")
    name = subject.get("name", "")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user.name == f"system:serviceaccount:{namespace}:{name}"
    return False


class RbacAuthorizer:
    """Decides requests from the RBAC objects in one store (read at each decision)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def authorize(self, user: UserInfo, request: AccessRequest, name: str = "") -> Decision:
        """Allowed when a built-in rule or a rule of a role bound to `user` matches."""
        if user.unrestricted:
            return Decision(True, "system:masters")
        if "system:authenticated" in user.groups and any(
            rule_allows(rule, request, name) for rule in BUILT_IN_RULES
        ):
            return Decision(True, "default discovery roles")
        errors: list[str] = []
        for binding_kind, binding_ns, binding in self._bindings(request.namespace):
            subjects = binding.get("subjects") or ()
            if not any(subject_matches(s, user, binding_ns) for s in subjects):
                continue
            rules = self._rules(binding.get("roleRef") or {}, binding_ns, errors)
            if any(rule_allows(rule, request, name) for rule in rules):
                binding_name = binding["metadata"]["name"]
                return Decision(True, f"{binding_kind} {binding_name!r} allows")
        return Decision(False, "RBAC: " + ", ".join(errors) if errors else "")

    def _bindings(self, namespace: str) -> Iterable[tuple[str, str, dict[str, Any]]]:
        for record in self.store.list(CLUSTERROLEBINDINGS):
            yield "ClusterRoleBinding", "", record.object()
        if namespace:
            for record in self.store.list(ROLEBINDINGS, namespace):
                yield "RoleBinding", namespace, record.object()

    def _rules(
        self, ref: Mapping[str, Any], namespace: str, errors: list[str]
    ) -> Sequence[Mapping[str, Any]]:
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind == "ClusterRole":
            record = self.store.get(CLUSTERROLES, "", name)
            missing = f'clusterrole.{RBAC_GROUP} "{name}" not found'
        elif kind == "Role" and namespace:
            record = self.store.get(ROLES, namespace, name)
            missing = f'role.{RBAC_GROUP} "{name}" not found'
        else:
            return ()
        if record is None:
            errors.append(missing)
            return ()
        rules = record.object().get("rules") or ()
        return [rule for rule in rules if isinstance(rule, Mapping)]


def forbidden(user: UserInfo, request: AccessRequest, name: str, reason: str = "") -> ApiError:
    """403 Forbidden worded as the API server words a denied request."""
    if request.path:
        method = request.verb
        message = f'forbidden: User "{user.name}" cannot {method} path "{request.path}"'
        if reason:
            message += f": {reason}"
        return ApiError(403, "Forbidden", message, {})
    resource = request.resource
    if request.subresource:
        resource += "/" + request.subresource
    scope = (
        f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
    )
    why = (
        f'User "{user.name}" cannot {request.verb} resource "{resource}" in API group '
        f'"{request.api_group}" {scope}'
    )
    if reason:
        why += f": {reason}"
    qualified = f"{request.resource}.{request.api_group}" if request.api_group else (
        request.resource)
    subject = f'{qualified} "{name}"' if name else qualified
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if request.api_group:
        details["group"] = request.api_group
    details["kind"] = request.resource
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details)
