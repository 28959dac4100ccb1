"""Events: recorded by the simulated scheduler and kubelet, read-only through the API.

They live in a store of their own (`eventstore.py`), whose expiry runs before each request.
"""

from __future__ import annotations

from typing import Any

from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.tables import TablePrinter, column, human_age
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import EVENT_FIELDS, EVENTS, ObjectStore

# The API server's event printer (always wide; kubectl hides priority 1 without -o wide).
_COLUMNS = (
    column("Last Seen", "The time at which the most recent occurrence of this event was "
            "recorded."),
    column("Type", "Type of this event (Normal, Warning), new types could be added in "
            "the future"),
    column("Reason", "This should be a short, machine understandable string that gives "
            "the reason for the transition into the object's current status."),
    column("Object", "The object that this event is about."),
    column("Subobject", "The field of the object the event is about.", priority=1),
    column("Source", "The component reporting this event.", priority=1),
    column("Message", "A human-readable description of the status of this operation."),
    column("First Seen", "The time at which the event was first recorded.", priority=1),
    column("Count", "The number of times this event has occurred.", kind="integer",
            priority=1),
    column("Name", "Name must be unique within a namespace.", priority=1),
)


def _cells(obj: dict[str, Any], now: float) -> list[Any]:
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


class EventKind(Kind):
    resource = EVENTS
    singular = "event"
    kind = "Event"
    namespaced = True
    verbs = ("get", "list", "watch")
    short_names = ("ev",)
    # The API server's event field set (pkg/registry/core/event/strategy.go).
    field_selectors = frozenset(EVENT_FIELDS)
    printer = TablePrinter(_COLUMNS, _cells)

    def store(self, runtime: SimulatorRuntime) -> ObjectStore:
        return runtime.events.objects

    def before_request(self, runtime: SimulatorRuntime) -> None:
        runtime.events.expire()
