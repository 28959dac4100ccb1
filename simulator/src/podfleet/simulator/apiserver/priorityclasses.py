"""PriorityClasses (scheduling.k8s.io/v1, cluster-scoped) and the Priority admission of pods.

A class has a `value`, an optional `globalDefault` (at most one class) and a
`preemptionPolicy` (`PreemptLowerPriority`, the default, or `Never`). The built-in
`system-cluster-critical` and `system-node-critical` exist from the start. A pod create
naming a class gets `spec.priority` and `spec.preemptionPolicy` from it; one naming none gets
the globalDefault class (or priority 0); one naming a class that does not exist is refused
with kube-apiserver's 403 (`no PriorityClass with name x was found`).
"""

from __future__ import annotations

from typing import Any

from podfleet.simulator.apiserver.errors import (
    CAUSE_NOT_SUPPORTED,
    ApiError,
    FieldError,
    forbidden,
    invalid,
    invalid_object,
)
from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.tables import TablePrinter, column
from podfleet.simulator.apiserver.validation import validate_metadata
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import PRIORITYCLASSES, ObjectStore

GROUP = "scheduling.k8s.io"
#: The highest value a class not named `system-…` may have.
HIGHEST_USER_PRIORITY = 1_000_000_000
POLICIES = ("Never", "PreemptLowerPriority")
#: The classes every cluster has.
SYSTEM_CLASSES = {
    "system-cluster-critical": (2_000_000_000,
                                "Used for system critical pods that must run in the cluster, "
                                "but can be moved to another node if necessary."),
    "system-node-critical": (2_000_001_000,
                             "Used for system critical pods that must not be moved from their "
                             "current node."),
}

_BEFORE_AGE = (
    column("Value", "Value is the integer value of this priority class.", kind="integer"),
    column("Global-Default", "GlobalDefault specifies whether this PriorityClass should be "
                             "considered as the default priority.", kind="boolean"),
)
_AFTER_AGE = (
    column("PreemptionPolicy", "PreemptionPolicy is the Policy for preempting pods with lower "
                               "priority."),
)


def _cells(obj: dict[str, Any], now: float) -> list[Any]:
    return [
        obj.get("value", 0),
        bool(obj.get("globalDefault", False)),
        obj.get("preemptionPolicy", "PreemptLowerPriority"),
    ]


def system_class(name: str) -> dict[str, Any]:
    """A built-in class as the API server creates it at start."""
    value, description = SYSTEM_CLASSES[name]
    return {
        "kind": "PriorityClass",
        "apiVersion": f"{GROUP}/v1",
        "metadata": {"name": name},
        "value": value,
        "description": description,
        "preemptionPolicy": "PreemptLowerPriority",
    }


def add_system_classes(store: ObjectStore) -> None:
    """Create the built-in classes in a new store."""
    for name in SYSTEM_CLASSES:
        store.create(PRIORITYCLASSES, system_class(name))


def _validate(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    errors: list[FieldError] = validate_metadata(meta)
    name = str(meta.get("name", ""))
    value = obj.get("value", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(invalid("value", value, "must be an integer"))
    elif name.startswith("system-"):
        if name not in SYSTEM_CLASSES:
            errors.append(invalid("metadata.name", name, "priority class names with 'system-' "
                                                         "prefix are reserved for system use "
                                                         "only"))
    elif value > HIGHEST_USER_PRIORITY:
        errors.append(forbidden("value", "maximum allowed value of a user defined priority is "
                                         f"{HIGHEST_USER_PRIORITY}"))
    policy = obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
    if policy not in POLICIES:
        supported = ", ".join(f'"{p}"' for p in POLICIES)
        errors.append(FieldError("preemptionPolicy", CAUSE_NOT_SUPPORTED,
                                 f"supported values: {supported}", policy, True))
    if not isinstance(obj.get("globalDefault", False), bool):
        errors.append(invalid("globalDefault", obj.get("globalDefault"), "must be a boolean"))
    if errors:
        raise invalid_object("PriorityClass", name, errors)


def _forbidden(name: str, message: str) -> ApiError:
    return ApiError(403, "Forbidden",
                    f'{PRIORITYCLASSES}.{GROUP} "{name}" is forbidden: {message}',
                    {"name": name, "group": GROUP, "kind": PRIORITYCLASSES})


def default_class(store: ObjectStore) -> dict[str, Any] | None:
    """The class marked globalDefault, if any (the lowest value if several, as Kubernetes)."""
    defaults = [r.object() for r in store.list(PRIORITYCLASSES, "")]
    defaults = [c for c in defaults if c.get("globalDefault")]
    return min(defaults, key=lambda c: int(c.get("value", 0))) if defaults else None


def resolve_pod_priority(pod: dict[str, Any], store: ObjectStore) -> None:
    """The Priority admission plugin: set spec.priority (and preemptionPolicy, and the class
    name when the default applies) from the pod's class; raise its 403 when it cannot."""
    spec = pod.setdefault("spec", {})
    name = str(pod["metadata"].get("name", ""))
    class_name = spec.get("priorityClassName")
    if class_name:
        record = store.get(PRIORITYCLASSES, "", str(class_name))
        if record is None:
            raise ApiError(403, "Forbidden",
                           f'pods "{name}" is forbidden: no PriorityClass with name '
                           f"{class_name} was found", {"name": name, "kind": "pods"})
        found: dict[str, Any] | None = record.object()
    else:
        found = default_class(store)
    value = int(found.get("value", 0)) if found else 0
    given = spec.get("priority")
    if given is not None and given != value:
        raise ApiError(403, "Forbidden",
                       f'pods "{name}" is forbidden: the integer value of priority ({given}) '
                       "must not be provided in pod spec; priority admission controller "
                       f"computed {value} from the given PriorityClass name",
                       {"name": name, "kind": "pods"})
    spec["priority"] = value
    if found is not None:
        spec["priorityClassName"] = found["metadata"]["name"]
        spec["preemptionPolicy"] = found.get("preemptionPolicy", "PreemptLowerPriority")


class PriorityClassKind(Kind):
    group = GROUP
    resource = PRIORITYCLASSES
    singular = "priorityclass"
    kind = "PriorityClass"
    namespaced = False
    short_names = ("pc",)
    printer = TablePrinter.named(_cells, before_age=_BEFORE_AGE, after_age=_AFTER_AGE)

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        _validate(obj)

    def admit(self, obj: dict[str, Any], namespace: str, runtime: SimulatorRuntime) -> None:
        if obj.get("globalDefault"):
            other = default_class(runtime.store)
            if other is not None:
                raise _forbidden(obj["metadata"]["name"],
                                 f"PriorityClass {other['metadata']['name']} is already marked "
                                 "as default. Only one default can exist")

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        _validate(new)
        errors = [forbidden(field, "may not be changed in an update.")
                  for field in ("value", "preemptionPolicy")
                  if new.get(field, old.get(field)) != old.get(field)]
        if errors:
            raise invalid_object("PriorityClass", old["metadata"]["name"], errors)
