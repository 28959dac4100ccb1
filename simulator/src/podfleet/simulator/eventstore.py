"""Where Event objects live: a store of their own, bounded in count and in age.

Why apart from the objects' store: a pod's life records four or five events, and large real
clusters keep events in an etcd of their own (`--etcd-servers-overrides=/events#...`) for the
same reason — so that they neither slow the writes of the objects that matter nor crowd
those objects' watch history. Events therefore have their own resourceVersion sequence (as
they do there), their own change log and their own watchers; the pods' create path never
touches this store.

Bounds, as the API server has them: every event expires `ttl_s` after its last write (the
apiserver's `--event-ttl`, 1 h by default; an update renews it), and at most `limit` events
are kept (oldest write dropped first), so a load test of 100,000 pods cannot fill the memory
with events. An expired or dropped event is removed with an ordinary DELETED change, as a
lease expiry in etcd looks to a watcher. Expiry is checked at each write and before each
read (list, get, watch), so it costs no timer.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from podfleet.simulator.store import EVENTS, Mutator, ObjectStore, Record

#: The API server's default `--event-ttl`.
DEFAULT_TTL_S = 3600.0


class EventStore:
    """Events, with expiry by age and a cap on their number."""

    def __init__(self, *, limit: int, ttl_s: float, start_rv: int = 0) -> None:
        self._limit = max(1, limit)
        self._ttl_s = ttl_s
        #: The events themselves, their resourceVersions and their watch history.
        self.objects = ObjectStore(history_events=max(1000, self._limit), history_slack=1024,
                                   start_rv=start_rv)
        # Writes oldest first: (when, namespace, name). An update appends again, so an entry
        # whose time is older than `_written`'s for its key is stale and skipped.
        self._writes: deque[tuple[float, str, str]] = deque()
        self._written: dict[tuple[str, str], float] = {}

    @property
    def resource_version(self) -> int:
        return self.objects.resource_version

    def count(self) -> int:
        return self.objects.count(EVENTS)

    def create(self, event: dict[str, Any], fields: tuple[str, ...] | None = None) -> Record:
        """Store a new event (its metadata.namespace and name set). Emits ADDED.

        `fields`: its `store.EVENT_FIELDS` values, when the caller has them at hand.
        """
        record = self.objects.create(EVENTS, event, fields)
        self._wrote(record.namespace, record.name)
        return record

    def update(self, namespace: str, name: str, mutate: Mutator) -> Record | None:
        """Change an event in place (a repeat's count and lastTimestamp); None if it is gone."""
        record = self.objects.update(EVENTS, namespace, name, mutate)
        if record is not None:
            self._wrote(namespace, name)
        return record

    def delete_namespace(self, namespace: str) -> None:
        """Remove every event of a namespace being deleted (as the namespace controller does)."""
        for record in self.objects.list(EVENTS, namespace):
            self._written.pop((namespace, record.name), None)
            self.objects.delete(EVENTS, namespace, record.name)

    def expire(self) -> None:
        """Remove the events past their TTL, and the oldest beyond the limit."""
        cutoff = time.monotonic() - self._ttl_s
        writes = self._writes
        written = self._written
        while writes:
            at, namespace, name = writes[0]
            key = (namespace, name)
            if written.get(key) != at:
                writes.popleft()  # stale: the event was written again later, or is gone
                continue
            if at >= cutoff and len(written) <= self._limit:
                break
            writes.popleft()
            del written[key]
            self.objects.delete(EVENTS, namespace, name)
        if len(writes) > 4 * self._limit:
            self._compact()

    def _wrote(self, namespace: str, name: str) -> None:
        now = time.monotonic()
        self._written[(namespace, name)] = now
        self._writes.append((now, namespace, name))
        self.expire()

    def _compact(self) -> None:
        """Drop the stale entries of a log of writes grown by many repeats."""
        live = sorted((at, ns, name) for (ns, name), at in self._written.items())
        self._writes = deque(live)
