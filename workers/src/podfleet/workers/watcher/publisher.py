"""Fenced writes: task events, per-pod records and the resourceVersion, in one Lua script.

The watcher's whole durable state for one watch scope (a namespace, or all of them) is two
keys: the resourceVersion it has published up to, and a hash of per-pod records (what it last
published about each pod it can see). Both change only together with the events they account
for, in ``publish.lua``, and only while the caller's fencing token is the lease's. After a
crash the next watcher therefore resumes from a state in which every event before the stored
resourceVersion is in the streams exactly once, and none after it is.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from podfleet.contracts.events import EventSource, TaskEvent
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.monitoring.metrics import TASK_EVENTS_PUBLISHED, WATCH_EVENT_LAG
from podfleet.workers.watcher.lease import REDIS_ERRORS, LeaseLost, WatcherLease, lua_script
from podfleet.workers.watcher.phases import Published

log = logging.getLogger(__name__)

ALL_NAMESPACES_SCOPE = "*"


def scope_name(namespace: str | None) -> str:
    """The key suffix of one watch scope: the namespace, or ``*`` for all namespaces."""
    return namespace or ALL_NAMESPACES_SCOPE


def pod_records_key(keys: RedisKeys, scope: str) -> str:
    """Hash: pod uid -> last published record (``phases.Published.encode``), per scope."""
    return keys.watcher_pod_records(scope)


@dataclass(slots=True)
class Batch:
    """What one ``publish.lua`` call writes."""

    events: list[TaskEvent] = field(default_factory=list)
    #: time.monotonic() at which each event's watch event was received (lag metric).
    received: list[float] = field(default_factory=list)
    #: pod uid -> encoded record, or None to delete the record (the pod is gone).
    records: dict[str, str | None] = field(default_factory=dict)
    resource_version: str | None = None
    #: (view suffix, namespace, pod name, confirm): changes of admission's views of pods
    #: not yet Running and of each queue's pods not finished
    #: (:mod:`podfleet.workers.admission.pending_view`).
    view_changes: list[tuple[str, str, str, bool]] = field(default_factory=list)
    #: view suffix -> (namespace, names a relist shows in it): the confirmed part, replaced.
    view_listed: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    def add(self, event: TaskEvent, received: float) -> None:
        self.events.append(event)
        self.received.append(received)

    @property
    def empty(self) -> bool:
        return (not self.events and not self.records and self.resource_version is None
                and not self.view_changes and not self.view_listed)

    def __len__(self) -> int:
        return len(self.events) + len(self.records) + len(self.view_changes)


class FencedPublisher:
    """Writes batches for one scope while the lease is held; LeaseLost as soon as it is not."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, scope: str,
                 lease: WatcherLease) -> None:
        self.client = client
        self.keys = keys
        self.scope = scope
        self.lease = lease
        self.rv_key = keys.watcher_resource_version(scope)
        self.records_key = pod_records_key(keys, scope)
        self._script: Any = client.register_script(lua_script("publish.lua"))
        self._sequence = 0

    def load_records(self) -> dict[str, Published]:
        """Every stored per-pod record of this scope (read in slices: it may be large)."""
        records: dict[str, Published] = {}
        for uid, raw in self.client.hscan_iter(self.records_key, count=2000):
            record = Published.decode(raw)
            if record is not None:
                records[uid.decode() if isinstance(uid, bytes) else str(uid)] = record
        return records

    def stored_resource_version(self) -> str | None:
        raw = self.client.get(self.rv_key)
        if not raw:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def publish(self, batch: Batch) -> None:
        """Write ``batch`` atomically, fenced by the lease's token; retried on lost connections.

        A retry reuses the batch id, so a batch whose first attempt did reach Redis is not
        written twice. Raises LeaseLost when Redis refuses the token or the lease runs out.
        """
        if batch.empty:
            return
        token = self.lease.check()
        self._sequence += 1
        keys, args = self._arguments(batch, token, f"{token}:{self._sequence}")
        delay = 0.05
        while True:
            try:
                result = int(self._script(keys=keys, args=args))
                break
            except REDIS_ERRORS as exc:
                self.lease.check()  # past the lease time: stop retrying, someone else took over
                log.warning("publishing a watcher batch failed, retrying: %s", exc)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        if result == 0:
            self.lease.mark_lost("a publish was refused: the lease has a newer token")
            raise LeaseLost("watcher lease was taken over; batch not written")
        self._record_metrics(batch)

    def _arguments(self, batch: Batch, token: int,
                   batch_id: str) -> tuple[list[str], list[str | int]]:
        keys = [self.keys.watcher_lease, self.rv_key, self.records_key]
        stream_index: dict[str, int] = {}
        sets = [(uid, rec) for uid, rec in batch.records.items() if rec is not None]
        deletes = [uid for uid, rec in batch.records.items() if rec is None]
        args: list[str | int] = [token, self.lease.holder, batch_id,
                                 batch.resource_version or "", len(batch.events), len(sets),
                                 len(deletes), self.keys.admission_prefix,
                                 self.keys.admission_namespaces, len(batch.view_changes),
                                 len(batch.view_listed)]
        for event in batch.events:
            stream = self.keys.events(event.executor_id)
            index = stream_index.get(stream)
            if index is None:
                keys.append(stream)
                index = stream_index[stream] = len(keys)  # Lua's KEYS is 1-based
            fields = event.to_fields()
            args.append(index)
            args.append(2 * len(fields))
            for name, value in fields.items():
                args.append(name)
                args.append(value)
        for uid, rec in sets:
            args.append(uid)
            args.append(rec)
        args.extend(deletes)
        for view, namespace, name, confirm in batch.view_changes:
            args += [view, namespace, name, "c" if confirm else "r"]
        for view, (namespace, names) in batch.view_listed.items():
            args += [view, namespace, len(names), *names]
        return keys, args

    @staticmethod
    def _record_metrics(batch: Batch) -> None:
        if not batch.events:
            return
        now = time.monotonic()
        for received in batch.received:
            WATCH_EVENT_LAG.observe(max(0.0, now - received))
        counts = Counter((e.state.value if e.state else e.kind.value) for e in batch.events)
        for state, count in counts.items():
            TASK_EVENTS_PUBLISHED.labels(source=EventSource.WATCHER, state=state).inc(count)
