"""What a valid Role, ClusterRole, RoleBinding or ClusterRoleBinding is
(rbac.authorization.k8s.io/v1).

The checks a client can get wrong, worded as the API server words them: every rule names verbs
and either resources (with apiGroups) or, in a ClusterRole only, non-resource URLs; a binding's
roleRef names a Role or ClusterRole (a ClusterRoleBinding: a ClusterRole only) and never
changes; each subject is a User, Group or ServiceAccount with a name.

The four kinds are served from here rather than a module each, since they differ only in
names and scope: `PolicyRulesKind` (Role, ClusterRole) and `RoleBindingsKind` (RoleBinding,
ClusterRoleBinding) run these checks at create and update. The RBAC authorizer
(`authorization.py`) reads the objects from the store at every decision, so a change applies to
the next request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podfleet.simulator.apiserver.errors import (
    CAUSE_NOT_SUPPORTED,
    FieldError,
    invalid,
    invalid_object,
    required,
)
from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.validation import validate_metadata

if TYPE_CHECKING:
    from podfleet.simulator.runtime import SimulatorRuntime

_SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


def _unsupported(path: str, value: Any, supported: tuple[str, ...]) -> FieldError:
    listed = ", ".join(f'"{s}"' for s in supported)
    return FieldError(path, CAUSE_NOT_SUPPORTED, f"supported values: {listed}", value, True)


def _entries(
    obj: dict[str, Any], field: str, what: str, errors: list[FieldError]
) -> list[tuple[str, dict[str, Any]]]:
    """The entries of the list `obj[field]` with their paths; each one that is not an object
    (or the field, when it is not a list) adds an error naming `what` it must be."""
    items = obj.get(field) or []
    if not isinstance(items, list):
        errors.append(invalid(field, items, f"must be a list of {what}s"))
        return []
    entries: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(items):
        path = f"{field}[{i}]"
        if isinstance(item, dict):
            entries.append((path, item))
        else:
            errors.append(invalid(path, item, f"must be a {what}"))
    return entries


def _name(obj: dict[str, Any]) -> str:
    name = obj["metadata"].get("name")
    return name if isinstance(name, str) else ""


def validate_role(obj: dict[str, Any], kind: str, *, namespaced: bool) -> None:
    """Raise 422 Invalid unless `obj` is a valid Role (`namespaced`) or ClusterRole."""
    errors = validate_metadata(obj["metadata"])
    for path, rule in _entries(obj, "rules", "PolicyRule", errors):
        if not rule.get("verbs"):
            errors.append(required(f"{path}.verbs", "verbs must contain at least one value"))
        urls = rule.get("nonResourceURLs") or []
        if urls and namespaced:
            errors.append(invalid(f"{path}.nonResourceURLs", urls,
                                  "namespaced rules cannot apply to non-resource URLs"))
        if urls and rule.get("resources"):
            errors.append(invalid(f"{path}.nonResourceURLs", urls,
                                  "rules cannot apply to both regular resources and "
                                  "non-resource URLs"))
        if not urls:
            if not rule.get("resources"):
                errors.append(required(f"{path}.resources",
                                       "resource rules must supply at least one resource"))
            if not rule.get("apiGroups"):
                errors.append(required(f"{path}.apiGroups",
                                       "resource rules must supply at least one api group"))
    if errors:
        raise invalid_object(kind, _name(obj), errors)


def validate_binding(obj: dict[str, Any], kind: str, *, namespaced: bool) -> None:
    """Raise 422 Invalid unless `obj` is a valid RoleBinding (`namespaced`) or
    ClusterRoleBinding."""
    errors = validate_metadata(obj["metadata"])
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        errors.append(required("roleRef", ""))
    else:
        allowed = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
        if ref.get("kind") not in allowed:
            errors.append(_unsupported("roleRef.kind", ref.get("kind", ""), allowed))
        if not ref.get("name"):
            errors.append(required("roleRef.name", ""))
        if ref.get("apiGroup") not in ("rbac.authorization.k8s.io", None, ""):
            errors.append(_unsupported("roleRef.apiGroup", ref.get("apiGroup"),
                                       ("rbac.authorization.k8s.io",)))
    for path, subject in _entries(obj, "subjects", "Subject", errors):
        if subject.get("kind") not in _SUBJECT_KINDS:
            errors.append(_unsupported(f"{path}.kind", subject.get("kind", ""), _SUBJECT_KINDS))
        if not subject.get("name"):
            errors.append(required(f"{path}.name", ""))
        if subject.get("kind") == "ServiceAccount" and not namespaced and not subject.get(
            "namespace"
        ):
            errors.append(required(f"{path}.namespace", ""))
    if errors:
        raise invalid_object(kind, _name(obj), errors)


def keep_role_ref(old: dict[str, Any], new: dict[str, Any], kind: str) -> None:
    """A binding's roleRef is immutable: raise 422 when an update changes it."""
    if new.get("roleRef") != old.get("roleRef"):
        raise invalid_object(kind, _name(new), [
            invalid("roleRef", new.get("roleRef"), "cannot change roleRef")])


class _RbacKind(Kind):
    group = "rbac.authorization.k8s.io"

    @property
    def qualified_kind(self) -> str:
        """How 422 messages name it (`Role.rbac.authorization.k8s.io "x" is invalid`)."""
        return f"{self.kind}.{self.group}"


class PolicyRulesKind(_RbacKind):
    """Role (`namespaced`) or ClusterRole: its rules are validated at create and update."""

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        validate_role(obj, self.qualified_kind, namespaced=self.namespaced)

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        validate_role(new, self.qualified_kind, namespaced=self.namespaced)


class RoleBindingsKind(_RbacKind):
    """RoleBinding (`namespaced`) or ClusterRoleBinding: validated at create and update; its
    roleRef never changes."""

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        validate_binding(obj, self.qualified_kind, namespaced=self.namespaced)

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        keep_role_ref(old, new, self.qualified_kind)
        validate_binding(new, self.qualified_kind, namespaced=self.namespaced)


class RoleKind(PolicyRulesKind):
    """rules: the verbs on resources it grants in its namespace."""

    resource = "roles"
    singular = "role"
    kind = "Role"
    namespaced = True


class ClusterRoleKind(PolicyRulesKind):
    """rules: the verbs on resources (and non-resource URLs) it grants."""

    resource = "clusterroles"
    singular = "clusterrole"
    kind = "ClusterRole"
    namespaced = False


class RoleBindingKind(RoleBindingsKind):
    """Who (subjects) gets a role's rules, in its namespace."""

    resource = "rolebindings"
    singular = "rolebinding"
    kind = "RoleBinding"
    namespaced = True


class ClusterRoleBindingKind(RoleBindingsKind):
    """Who (subjects) gets a ClusterRole's rules, everywhere."""

    resource = "clusterrolebindings"
    singular = "clusterrolebinding"
    kind = "ClusterRoleBinding"
    namespaced = False
