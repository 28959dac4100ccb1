"""Nodes: cluster-scoped, validated at create and update, status kept unless the update
sets one."""

from __future__ import annotations

from typing import Any

from podfleet.simulator.apiserver.kind import Kind, Subresource
from podfleet.simulator.apiserver.tables import TablePrinter, column
from podfleet.simulator.apiserver.validation import validate_node
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import NODES

_BEFORE_AGE = (
    column("Status", "The status of the node"),
    column("Roles", "The roles of the node"),
)
_AFTER_AGE = (
    column("Version", "Kubelet Version reported by the node."),
    column("Internal-IP", "List of internal IPs.", priority=1),
    column("External-IP", "List of external IPs.", priority=1),
    column("OS-Image", "OS Image reported by the node.", priority=1),
    column("Kernel-Version", "Kernel Version reported by the node.", priority=1),
    column("Container-Runtime", "Container Runtime Version reported by the node.", priority=1),
)


def _cells(obj: dict[str, Any], now: float) -> list[Any]:
    meta = obj.get("metadata", {})
    status = obj.get("status", {})
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    state = "Ready" if conditions.get("Ready") == "True" else "NotReady"
    if (obj.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    roles = sorted(
        key.split("/", 1)[1]
        for key in (meta.get("labels") or {})
        if key.startswith("node-role.kubernetes.io/")
    )
    return [
        state,
        ",".join(roles) or "<none>",
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP") or "<none>",
        addresses.get("ExternalIP") or "<none>",
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


class NodeKind(Kind):
    resource = NODES
    singular = "node"
    kind = "Node"
    namespaced = False
    short_names = ("no",)
    subresources = (Subresource("status"),)
    field_selectors = frozenset({"metadata.name"})
    printer = TablePrinter.named(_cells, before_age=_BEFORE_AGE, after_age=_AFTER_AGE)

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        validate_node(obj)

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        new.setdefault("status", old.get("status", {}))
        validate_node(new)
