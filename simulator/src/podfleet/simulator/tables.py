"""Server-side printing: the meta.k8s.io/v1 `Table` kubectl asks for with `as=Table`.

kubectl renders whatever columns and cells the server sends, so `kubectl get pods` shows
NAME READY STATUS RESTARTS AGE exactly as computed here.
"""

from __future__ import annotations

import time
from calendar import timegm
from typing import Any

from podfleet.simulator.store import EVENTS, NAMESPACES, NODES, PODS, Record

_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
_AGE_COLUMN = {
    "name": "Age",
    "type": "string",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
    "priority": 0,
}


def _column(
    name: str, description: str, *, kind: str = "string", priority: int = 0
) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "format": "",
        "description": description,
        "priority": priority,
    }


COLUMNS: dict[str, list[dict[str, Any]]] = {
    PODS: [
        _NAME_COLUMN,
        _column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _column("Status", "The aggregate status of the containers in this pod."),
        _column(
            "Restarts",
            "The number of times the containers in this pod have been restarted.",
            kind="string",
        ),
        _AGE_COLUMN,
        _column("IP", "IP address allocated to the pod.", priority=1),
        _column("Node", "Name of the node where the pod is scheduled.", priority=1),
        _column("Nominated Node", "Name of the node nominated for preemption.", priority=1),
        _column("Readiness Gates", "Pod readiness gates.", priority=1),
    ],
    NODES: [
        _NAME_COLUMN,
        _column("Status", "The status of the node"),
        _column("Roles", "The roles of the node"),
        _AGE_COLUMN,
        _column("Version", "Kubelet Version reported by the node."),
        _column("Internal-IP", "List of internal IPs.", priority=1),
        _column("External-IP", "List of external IPs.", priority=1),
        _column("OS-Image", "OS Image reported by the node.", priority=1),
        _column("Kernel-Version", "Kernel Version reported by the node.", priority=1),
        _column("Container-Runtime", "Container Runtime Version reported by the node.", priority=1),
    ],
    NAMESPACES: [
        _NAME_COLUMN,
        _column("Status", "The status of the namespace"),
        _AGE_COLUMN,
    ],
    # The API server's event printer (always wide; kubectl hides priority 1 without -o wide).
    EVENTS: [
        _column("Last Seen", "The time at which the most recent occurrence of this event was "
                "recorded."),
        _column("Type", "Type of this event (Normal, Warning), new types could be added in "
                "the future"),
        _column("Reason", "This should be a short, machine understandable string that gives "
                "the reason for the transition into the object's current status."),
        _column("Object", "The object that this event is about."),
        _column("Subobject", "The field of the object the event is about.", priority=1),
        _column("Source", "The component reporting this event.", priority=1),
        _column("Message", "A human-readable description of the status of this operation."),
        _column("First Seen", "The time at which the event was first recorded.", priority=1),
        _column("Count", "The number of times this event has occurred.", kind="integer",
                priority=1),
        _column("Name", "Name must be unique within a namespace.", priority=1),
    ],
}


def human_age(timestamp: str | None, now: float) -> str:
    """`5s`, `3m2s`, `4h`, `2d`: kubectl's HumanDuration, roughly."""
    if not timestamp:
        return "<unknown>"
    try:
        # Seconds are enough; MicroTime stamps (eventTime) carry a fraction after them.
        created = timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return "<unknown>"
    seconds = max(0, int(now - created))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _pod_cells(obj: dict[str, Any], now: float) -> list[Any]:
    meta = obj.get("metadata", {})
    spec = obj.get("spec", {})
    status = obj.get("status", {})
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for s in reversed(statuses):
        state = s.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            terminated = state["terminated"]
            reason = terminated.get("reason") or (
                f"Signal:{terminated['signal']}"
                if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode', 0)}"
            )
    if meta.get("deletionTimestamp"):
        reason = "Terminating"
    return [
        meta.get("name", ""),
        f"{ready}/{len(containers)}",
        reason,
        restarts,
        human_age(meta.get("creationTimestamp"), now),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


def _node_cells(obj: dict[str, Any], now: float) -> list[Any]:
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
        meta.get("name", ""),
        state,
        ",".join(roles) or "<none>",
        human_age(meta.get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP") or "<none>",
        addresses.get("ExternalIP") or "<none>",
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def _namespace_cells(obj: dict[str, Any], now: float) -> list[Any]:
    meta = obj.get("metadata", {})
    return [
        meta.get("name", ""),
        (obj.get("status") or {}).get("phase", "Active"),
        human_age(meta.get("creationTimestamp"), now),
    ]


def _event_cells(obj: dict[str, Any], now: float) -> list[Any]:
    involved = obj.get("involvedObject") or {}
    first = human_age(obj.get("firstTimestamp") or obj.get("eventTime"), now)
    last = human_age(obj.get("lastTimestamp"), now) if obj.get("lastTimestamp") else first
    series = obj.get("series") or {}
    count = series.get("count") or obj.get("count") or 1
    if series:
        last = human_age(series.get("lastObservedTime"), now)
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = obj.get("source") or {}
    origin = source.get("component") or obj.get("reportingComponent") or ""
    host = source.get("host") or obj.get("reportingInstance") or ""
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        f"{origin}, {host}" if host and source.get("host") else origin,
        str(obj.get("message", "")).strip(),
        first,
        int(count),
        (obj.get("metadata") or {}).get("name", ""),
    ]


_CELLS = {
    PODS: _pod_cells,
    NODES: _node_cells,
    NAMESPACES: _namespace_cells,
    EVENTS: _event_cells,
}


def table_row(
    resource: str, obj: dict[str, Any], include_object: str, now: float
) -> dict[str, Any]:
    """One row; `object` is PartialObjectMetadata, the full object, or absent."""
    cells_of = _CELLS.get(resource)
    if cells_of is None:
        meta = obj.get("metadata", {})
        cells: list[Any] = [meta.get("name", ""), human_age(meta.get("creationTimestamp"), now)]
    else:
        cells = cells_of(obj, now)
    row: dict[str, Any] = {"cells": cells}
    if include_object == "Object":
        row["object"] = obj
    elif include_object != "None":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {}),
        }
    return row


def table(
    resource: str,
    records: list[Record],
    *,
    resource_version: str,
    include_object: str,
    continue_token: str = "",
) -> dict[str, Any]:
    """A Table of `records` with the resource's columns."""
    now = time.time()
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": COLUMNS.get(resource, [_NAME_COLUMN, _AGE_COLUMN]),
        "rows": [table_row(resource, r.object(), include_object, now) for r in records],
    }


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for a meta.k8s.io Table (kubectl get does)."""
    return "as=Table" in accept
