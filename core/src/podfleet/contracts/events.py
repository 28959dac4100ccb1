"""Task events: what the launcher and the watcher tell the owning executor, via its Redis stream.

Every outcome of a launch and every pod phase change that matters becomes one ``TaskEvent`` in
the stream of the executor that owns the task (``streams.event_stream(executor_id)``). Events
carry the launch id, so an event about an older launch of the same try (a stale pod) is ignored
by the executor, and its state machine makes replays harmless. Why a launch or pod failed
travels typed, as a :class:`~podfleet.contracts.failure.Failure`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from podfleet.contracts.clusters import DEFAULT_CLUSTER
from podfleet.contracts.failure import Failure
from podfleet.contracts.keys import InvalidTaskKey, TaskKey
from podfleet.contracts.states import TaskState

EVENT_VERSION = "1"
# Version 1 without a "failure" field (written before failures were typed) carried a failure's
# message, exit code, container and termination message as keys of "detail".
_LEGACY_FAILURE_KEYS = ("message", "exit_code", "container", "termination_message")


class EventKind(StrEnum):
    STATE = "state"      # the task moved to ``state``
    REQUEUE = "requeue"  # its pod vanished before it ever ran: launch the try again
    # Its launch is parked, still QUEUED: ``failure`` says on what (a full ResourceQuota).
    WAITING = "waiting"


class EventSource(StrEnum):
    LAUNCHER = "launcher"
    WATCHER = "watcher"
    EXECUTOR = "executor"


class InvalidEvent(ValueError):
    """A stream entry that is not a well-formed task event."""


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One thing that happened to one launch of one task try.

    ``failure`` says why, for a FAILED state, a REQUEUE and a WAITING (whose ``message`` is
    what the task waits on, as ``podfleet status`` shows it); ``detail`` holds observations
    that decide nothing (node, start latency, create attempts, …). ``cluster`` is the
    cluster the launch was placed on (the launcher's choice, the watcher's own cluster); an
    event written before clusters existed reads as
    :data:`~podfleet.contracts.clusters.DEFAULT_CLUSTER`.
    """

    key: TaskKey
    launch_id: str
    executor_id: str  # the owning executor: the event goes to its stream
    kind: EventKind
    source: EventSource
    state: TaskState | None = None
    failure: Failure | None = None
    pod_name: str | None = None
    namespace: str | None = None
    pod_uid: str | None = None
    occurred_at: float = field(default_factory=time.time)
    detail: dict[str, Any] = field(default_factory=dict)
    cluster: str = DEFAULT_CLUSTER

    @property
    def reason(self) -> str | None:
        """The failure's short reason (its grouping key), or None."""
        return self.failure.reason if self.failure else None

    def to_fields(self) -> dict[str, str]:
        """Flat string fields for XADD."""
        return {
            "v": EVENT_VERSION,
            "key": orjson.dumps(self.key.as_list()).decode(),
            "launch_id": self.launch_id,
            "executor": self.executor_id,
            "kind": self.kind.value,
            "source": self.source.value,
            "state": self.state.value if self.state else "",
            "reason": self.failure.reason if self.failure else "",
            "failure": orjson.dumps(self.failure.to_wire()).decode() if self.failure else "",
            "pod": self.pod_name or "",
            "ns": self.namespace or "",
            "uid": self.pod_uid or "",
            "at": repr(self.occurred_at),
            "detail": orjson.dumps(self.detail).decode(),
            "cluster": self.cluster,
        }

    @classmethod
    def from_fields(cls, fields: dict[Any, Any]) -> TaskEvent:
        """Parse XREAD output (bytes or str keys and values); raises InvalidEvent."""
        f = {_text(k): _text(v) for k, v in fields.items()}
        if f.get("v") != EVENT_VERSION:
            raise InvalidEvent(f"unsupported event version {f.get('v')!r}")
        try:
            key = TaskKey.from_list(orjson.loads(f["key"]))
            kind = EventKind(f["kind"])
            source = EventSource(f["source"])
            state = TaskState(f["state"]) if f.get("state") else None
            occurred_at = float(f["at"])
            detail = orjson.loads(f.get("detail") or "{}")
            failure_fields = orjson.loads(f.get("failure") or "{}")
        except (KeyError, ValueError, InvalidTaskKey, orjson.JSONDecodeError) as exc:
            raise InvalidEvent(f"malformed task event: {exc}") from None
        if not isinstance(detail, dict):
            detail = {}
        failure = None
        if f.get("reason"):
            if "failure" not in f:  # written by an older version: the failure is in detail
                failure_fields = {k: detail.pop(k) for k in _LEGACY_FAILURE_KEYS if k in detail}
            failure = Failure.from_wire(f["reason"], failure_fields
                                        if isinstance(failure_fields, dict) else {})
        if kind is EventKind.STATE and state is None:
            raise InvalidEvent("a state event must name its state")
        return cls(
            key=key,
            launch_id=f.get("launch_id", ""),
            executor_id=f.get("executor", ""),
            kind=kind,
            source=source,
            state=state,
            failure=failure,
            pod_name=f.get("pod") or None,
            namespace=f.get("ns") or None,
            pod_uid=f.get("uid") or None,
            occurred_at=occurred_at,
            detail=detail,
            cluster=f.get("cluster") or DEFAULT_CLUSTER,
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def publish_events(redis_client: Any, keys: Any, events: list[TaskEvent]) -> None:
    """XADD each event to its executor's stream, in one pipelined round trip.

    ``keys`` is a :class:`podfleet.contracts.redis_keys.RedisKeys`; each event goes to the
    stream of its ``executor_id``. Streams are never trimmed here:
    the executor deletes entries only after applying them (see ``Executor.sync``).
    """
    if not events:
        return
    pipe = redis_client.pipeline(transaction=False)
    for event in events:
        pipe.xadd(keys.events(event.executor_id), event.to_fields())
    pipe.execute()
