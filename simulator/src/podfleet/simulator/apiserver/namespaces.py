"""Namespaces: cluster-scoped; created Active with the `kubernetes` finalizer and the
`kubernetes.io/metadata.name` label; deleting one deletes its pods and events at once."""

from __future__ import annotations

from typing import Any

from podfleet.simulator.apiserver.kind import Kind, Subresource
from podfleet.simulator.apiserver.tables import TablePrinter, column
from podfleet.simulator.apiserver.validation import validate_namespace
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import NAMESPACES, PODS, Record

_COLUMNS = (column("Status", "The status of the namespace"),)


def _cells(obj: dict[str, Any], now: float) -> list[Any]:
    return [(obj.get("status") or {}).get("phase", "Active")]


class NamespaceKind(Kind):
    resource = NAMESPACES
    singular = "namespace"
    kind = "Namespace"
    namespaced = False
    verbs = ("create", "delete", "get", "list", "patch", "update", "watch")
    short_names = ("ns",)
    subresources = (Subresource("status"),)
    field_selectors = frozenset({"metadata.name", "status.phase"})
    printer = TablePrinter.named(_cells, before_age=_COLUMNS)

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        validate_namespace(obj)
        obj.pop("spec", None)
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
        meta = obj["metadata"]
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        new["status"] = old.get("status", {})
        new["spec"] = old.get("spec", {})
        validate_namespace(new)

    def delete(
        self, record: Record, options: dict[str, Any], runtime: SimulatorRuntime
    ) -> Record:
        store = runtime.store
        for pod in store.list(PODS, record.name):
            store.delete(PODS, pod.namespace, pod.name)
        runtime.events.delete_namespace(record.name)
        deleted = store.delete(NAMESPACES, "", record.name)
        return deleted or record
