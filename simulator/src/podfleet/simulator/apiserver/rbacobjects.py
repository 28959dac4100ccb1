"""What a valid Role, ClusterRole, RoleBinding or ClusterRoleBinding is
(rbac.authorization.k8s.io/v1).

The checks a client can get wrong, worded as the API server words them: every rule names verbs
and either resources (with apiGroups) or, in a ClusterRole only, non-resource URLs; a binding's
roleRef names a Role or ClusterRole (a ClusterRoleBinding: a ClusterRole only) and never
changes; each subject is a User, Group or ServiceAccount with a name.
"""

from __future__ import annotations

from typing import Any

from podfleet.simulator.apiserver.errors import (
    CAUSE_NOT_SUPPORTED,
    FieldError,
    invalid,
    invalid_object,
    required,
)
from podfleet.simulator.apiserver.validation import validate_metadata

_SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


def _unsupported(path: str, value: Any, supported: tuple[str, ...]) -> FieldError:
    listed = ", ".join(f'"{s}"' for s in supported)
    return FieldError(path, CAUSE_NOT_SUPPORTED, f"supported values: {listed}", value, True)


def _name(obj: dict[str, Any]) -> str:
    name = obj["metadata"].get("name")
    return name if isinstance(name, str) else ""


def validate_role(obj: dict[str, Any], kind: str, *, namespaced: bool) -> None:
    """Raise 422 Invalid unless `obj` is a valid Role (`namespaced`) or ClusterRole."""
    errors = validate_metadata(obj["metadata"])
    rules = obj.get("rules") or []
    if not isinstance(rules, list):
        errors.append(invalid("rules", rules, "must be a list of PolicyRules"))
        rules = []
    for i, rule in enumerate(rules):
        path = f"rules[{i}]"
        if not isinstance(rule, dict):
            errors.append(invalid(path, rule, "must be a PolicyRule"))
            continue
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
    subjects = obj.get("subjects") or []
    if not isinstance(subjects, list):
        errors.append(invalid("subjects", subjects, "must be a list of Subjects"))
        subjects = []
    for i, subject in enumerate(subjects):
        path = f"subjects[{i}]"
        if not isinstance(subject, dict):
            errors.append(invalid(path, subject, "must be a Subject"))
            continue
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
