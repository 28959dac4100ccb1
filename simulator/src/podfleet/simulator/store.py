"""The simulator's object store: every object, one resourceVersion counter, and the change log.

Why it looks like this:
- Objects are kept as their JSON bytes plus the few fields that lists, selectors and indexes
  need (namespace, name, labels, phase, nodeName). A GET or a list sends the bytes as they are;
  only a mutation parses an object. That keeps 100,000 pods well under a gigabyte and makes
  reads nearly free.
- Every change bumps one store-wide counter by exactly one and appends one event to a log.
  Watchers do not get their own queues: each holds a cursor (the last resourceVersion it sent)
  into the shared log, so resuming from a resourceVersion, exactly-once and in-order delivery
  are all the same code path. The log is a bounded window (events and/or seconds, changeable at
  run time); a cursor that falls out of it gets "410 Expired", as from a real watch cache.
- Listeners (the simulated scheduler and kubelet) are called synchronously on the event loop,
  in resourceVersion order, after each change is committed.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

log = logging.getLogger(__name__)

PODS = "pods"
NODES = "nodes"
NAMESPACES = "namespaces"
EVENTS = "events"
SERVICEACCOUNTS = "serviceaccounts"
ROLES = "roles"
ROLEBINDINGS = "rolebindings"
RESOURCEQUOTAS = "resourcequotas"
PRIORITYCLASSES = "priorityclasses"
#: Resources whose objects live in a namespace (the others are cluster-scoped).
NAMESPACED = frozenset({PODS, EVENTS, SERVICEACCOUNTS, ROLES, ROLEBINDINGS, RESOURCEQUOTAS})

Mutator = Callable[[dict[str, Any]], "bool | None"]
Listener = Callable[["StoreEvent"], None]


class AlreadyExistsError(Exception):
    """An object with that namespace and name already exists."""


class ConflictError(Exception):
    """The caller's resourceVersion is not the object's current one."""


class ExpiredError(Exception):
    """The resourceVersion asked for is older than the history window."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


_stamp_second = -1
_stamp = ""


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps (seconds, UTC, Z).

    Formatted once per second: every create and most kubelet writes ask for it.
    """
    global _stamp_second, _stamp
    second = int(time.time())
    if second != _stamp_second:
        _stamp_second = second
        _stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
    return _stamp


@dataclass(slots=True, eq=False)
class Record:
    """One version of one object: its JSON and the fields selectors and indexes read."""

    resource: str
    namespace: str
    name: str
    uid: str
    rv: int
    raw: bytes
    labels: dict[str, str]
    phase: str
    node_name: str
    deleting: bool
    #: Field-selector values of resources whose fields live deeper in the object (events'
    #: involvedObject.*, in `EVENT_FIELDS` order), taken once at write time; None for others.
    fields: tuple[str, ...] | None = None
    #: Pods: where `,"status":` of the top-level status starts in `raw` when status is the
    #: object's last field (so a status write can splice it), else -1.
    status_at: int = -1

    def object(self) -> dict[str, Any]:
        """A fresh, mutable parsed copy of the object."""
        result: dict[str, Any] = orjson.loads(self.raw)
        return result

    def field(self, path: str) -> str | None:
        """The value of a field selector's field, or None when the field is not supported."""
        if self.fields is not None:
            index = _EVENT_FIELD_INDEX.get(path)
            return self.fields[index] if index is not None else None
        if path == "metadata.name":
            return self.name
        if path == "metadata.namespace":
            return self.namespace
        if self.resource == PODS:
            if path == "status.phase":
                return self.phase
            if path == "spec.nodeName":
                return self.node_name
        elif self.resource == NAMESPACES and path == "status.phase":
            return self.phase
        return None


@dataclass(slots=True, eq=False)
class StoreEvent:
    """One committed change. For DELETED, `record` is the last state at the deletion's RV."""

    type: str
    record: Record
    prev: Record | None
    at: float

    @property
    def rv(self) -> int:
        return self.record.rv


_EMPTY_LABELS: dict[str, str] = {}


def _dump(obj: Any) -> bytes:
    """The object as JSON bytes of exactly their length.

    orjson returns bytes backed by a larger allocation (about 4 KiB for a pod); kept for the
    life of an object that would triple the store's memory, so keep a right-sized copy.
    """
    return bytes(memoryview(orjson.dumps(obj)))


_STATUS_KEY = b',"status":'


def _with_resource_version(record: Record, rv: int) -> bytes:
    """`record`'s JSON with metadata.resourceVersion set to `rv`.

    The store wrote `"resourceVersion":"<record.rv>"` itself, and JSON escapes every quote
    inside strings, so that exact text occurs once, in metadata: replacing it saves parsing
    and dumping the whole object (deletions, status writes).
    """
    old = b'"resourceVersion":"%d"' % record.rv
    raw = record.raw
    if raw.count(old) == 1:
        return raw.replace(old, b'"resourceVersion":"%d"' % rv)
    obj = record.object()
    obj["metadata"]["resourceVersion"] = str(rv)
    return _dump(obj)


def _intern_labels(labels: Any, prev: dict[str, str] | None) -> dict[str, str]:
    """Labels with interned strings, sharing the previous version's dict when unchanged."""
    if not labels:
        return _EMPTY_LABELS
    if prev is not None and prev == labels:
        return prev
    return {sys.intern(str(k)): sys.intern(str(v)) for k, v in labels.items()}


#: The fields an Event can be selected by (the API server's event field set).
EVENT_FIELDS = (
    "metadata.name", "metadata.namespace", "reason", "reportingComponent", "source", "type",
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
)
_EVENT_FIELD_INDEX = {name: index for index, name in enumerate(EVENT_FIELDS)}
_INVOLVED_KEYS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                  "fieldPath")


class UidSource:
    """UIDs shaped like random (version 4) UUIDs, cheaply: one random prefix per source and
    a counter. Unique within a run, and across runs with overwhelming odds, which is all a
    uid must be; ``uuid4()`` costs a system call and an object per call."""

    def __init__(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        return f"{self._prefix}{self._count:012x}"


def event_fields(obj: dict[str, Any]) -> tuple[str, ...]:
    """An Event's `EVENT_FIELDS` values; interned, as most repeat across events."""
    meta = obj.get("metadata") or {}
    involved = obj.get("involvedObject") or {}
    intern = sys.intern
    return (
        intern(str(meta.get("name", ""))),
        intern(str(meta.get("namespace", ""))),
        intern(str(obj.get("reason") or "")),
        intern(str(obj.get("reportingComponent") or "")),
        intern(str((obj.get("source") or {}).get("component") or "")),
        intern(str(obj.get("type") or "")),
        *(intern(str(involved.get(key) or "")) for key in _INVOLVED_KEYS),
    )


class ObjectStore:
    """All objects of the simulated cluster, their change log and their listeners."""

    def __init__(
        self,
        *,
        history_events: int = 100_000,
        history_slack: int = 0,
        history_seconds: float | None = None,
        start_rv: int = 0,
    ) -> None:
        self._rv = start_rv
        # Any resource a kind stores has its bucket on first use.
        self._objects: dict[str, dict[str, dict[str, Record]]] = defaultdict(dict)
        self._counts: Counter[str] = Counter()
        self._peaks: Counter[str] = Counter()
        self._pod_phases: Counter[str] = Counter()
        self._pods_by_node: dict[str, dict[tuple[str, str], Record]] = {}
        self._unscheduled: dict[tuple[str, str], Record] = {}
        # The change log: _log[_log_start:] are the events inside the window.
        self._log: builtins.list[StoreEvent] = []
        self._log_start = 0
        self._window_start_rv = start_rv
        self._history_events = max(1, history_events)
        # How far past the window the log may grow before it is trimmed (trimming in batches
        # for a store whose window is always full, such as the events').
        self._history_slack = max(0, history_slack)
        self._history_seconds = history_seconds
        self._listeners: builtins.list[Listener] = []
        self._dispatching = False
        self._pending: builtins.list[StoreEvent] = []
        self._waiters: builtins.list[asyncio.Future[None]] = []
        self._wake_scheduled = False
        self._deletion_timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._sorted_names: dict[tuple[str, str], list[str]] = {}
        self._new_uid = UidSource()

    # ------------------------------------------------------------------ read side

    @property
    def resource_version(self) -> int:
        """The resourceVersion of the latest change."""
        return self._rv

    def get(self, resource: str, namespace: str, name: str) -> Record | None:
        bucket = self._objects[resource].get(namespace)
        return bucket.get(name) if bucket is not None else None

    def list(self, resource: str, namespace: str | None = None) -> builtins.list[Record]:
        """Objects sorted by namespace then name, as a real server lists them."""
        buckets = self._objects[resource]
        if namespace is not None:
            bucket = buckets.get(namespace)
            if not bucket:
                return []
            return [bucket[n] for n in self._sorted(resource, namespace, bucket)]
        result: builtins.list[Record] = []
        for ns in sorted(buckets):
            bucket = buckets[ns]
            result.extend(bucket[n] for n in self._sorted(resource, ns, bucket))
        return result

    def iter_unsorted(self, resource: str, namespace: str | None = None) -> Iterable[Record]:
        """Objects in no particular order (cheaper than `list`)."""
        buckets = self._objects[resource]
        if namespace is not None:
            return list(buckets.get(namespace, {}).values())
        return [r for bucket in buckets.values() for r in bucket.values()]

    def _sorted(
        self, resource: str, namespace: str, bucket: dict[str, Record]
    ) -> builtins.list[str]:
        key = (resource, namespace)
        names = self._sorted_names.get(key)
        if names is None:
            names = sorted(bucket)
            self._sorted_names[key] = names
        return names

    def namespaces(self, resource: str) -> builtins.list[str]:
        return sorted(ns for ns, bucket in self._objects[resource].items() if bucket)

    def pods_on_node(self, node_name: str) -> builtins.list[Record]:
        return list(self._pods_by_node.get(node_name, {}).values())

    def unscheduled_pods(self) -> builtins.list[Record]:
        """Pods without spec.nodeName that are not being deleted, oldest first."""
        return list(self._unscheduled.values())

    def pods_by_phase(self) -> dict[str, int]:
        return {phase: n for phase, n in self._pod_phases.items() if n}

    def count(self, resource: str) -> int:
        return self._counts[resource]

    def peak_count(self, resource: str) -> int:
        return self._peaks[resource]

    # ------------------------------------------------------------------ history window

    @property
    def window_start_rv(self) -> int:
        """The oldest resourceVersion a watch can still resume from."""
        self._trim_by_age()
        return self._window_start_rv

    def set_history_window(
        self, *, events: int | None = None, seconds: float | None = None
    ) -> None:
        """Change how much history is kept (run time; a smaller window forces 410s)."""
        if events is not None:
            self._history_events = max(1, events)
        self._history_seconds = seconds
        self._trim()

    def history_window(self) -> tuple[int, float | None]:
        return self._history_events, self._history_seconds

    def events_after(self, rv: int, limit: int = 1000) -> builtins.list[StoreEvent]:
        """Events with resourceVersion > rv, oldest first; ExpiredError if rv left the window."""
        self._trim_by_age()
        if rv < self._window_start_rv:
            raise ExpiredError(rv, self._window_start_rv)
        if rv >= self._rv:
            return []
        start = self._log_start + (rv - self._window_start_rv)
        return self._log[start : start + limit]

    def _trim(self) -> None:
        excess = (len(self._log) - self._log_start) - self._history_events
        if excess > 0:
            self._log_start += excess
        self._trim_by_age()
        if self._log_start < len(self._log):
            self._window_start_rv = self._log[self._log_start].rv - 1
        else:
            self._window_start_rv = self._rv
        # Compact in small steps: dropping 4096 old events at a time keeps each pause short.
        if self._log_start >= 4096:
            del self._log[: self._log_start]
            self._log_start = 0

    def _trim_by_age(self) -> None:
        if self._history_seconds is None:
            return
        cutoff = time.monotonic() - self._history_seconds
        log_ = self._log
        start = self._log_start
        end = len(log_)
        while start < end and log_[start].at < cutoff:
            start += 1
        if start != self._log_start:
            self._log_start = start
            self._window_start_rv = log_[start].rv - 1 if start < end else self._rv

    # ------------------------------------------------------------------ waiting

    async def wait_for_change(self, after_rv: int, timeout: float | None) -> None:
        """Return when the store's RV passes `after_rv`, or after `timeout` seconds."""
        if self._rv > after_rv:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            if not future.done():
                future.cancel()

    def wake_all(self) -> None:
        """Wake every waiting watcher now (used at shutdown)."""
        self._wake()

    def _wake(self) -> None:
        self._wake_scheduled = False
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    # ------------------------------------------------------------------ listeners

    def add_listener(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(event)` after every committed change; returns a remover."""
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return remove

    # ------------------------------------------------------------------ write side

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _make_record(
        self,
        resource: str,
        obj: dict[str, Any],
        rv: int,
        prev: Record | None,
        fields: tuple[str, ...] | None = None,
    ) -> Record:
        meta = obj["metadata"]
        status = obj.get("status") or {}
        spec = obj.get("spec") or {}
        raw = _dump(obj)
        status_at = -1
        if resource == PODS and isinstance(status, dict) and next(reversed(obj)) == "status":
            tail = _STATUS_KEY + orjson.dumps(status) + b"}"
            if raw.endswith(tail):
                status_at = len(raw) - len(tail)
        return Record(
            resource=resource,
            namespace=meta.get("namespace", "") if resource in NAMESPACED else "",
            name=meta["name"],
            uid=meta.get("uid", ""),
            rv=rv,
            raw=raw,
            labels=_intern_labels(meta.get("labels"), prev.labels if prev else None),
            phase=status.get("phase", "") if isinstance(status, dict) else "",
            node_name=(spec.get("nodeName") or "") if isinstance(spec, dict) else "",
            deleting=bool(meta.get("deletionTimestamp")),
            fields=(fields or event_fields(obj)) if resource == EVENTS else None,
            status_at=status_at,
        )

    def create(
        self, resource: str, obj: dict[str, Any], fields: tuple[str, ...] | None = None
    ) -> Record:
        """Add a new object; fills uid, creationTimestamp, resourceVersion. Emits ADDED.

        `fields`: an event's `EVENT_FIELDS` values when the caller has them at hand (saves
        reading them back out of the object).
        """
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if resource in NAMESPACED else ""
        if resource not in NAMESPACED:
            meta.pop("namespace", None)
        name = meta["name"]
        bucket = self._objects[resource].setdefault(namespace, {})
        if name in bucket:
            raise AlreadyExistsError(name)
        if not meta.get("uid"):
            meta["uid"] = self._new_uid()
        if not meta.get("creationTimestamp"):
            meta["creationTimestamp"] = now_rfc3339()
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        record = self._make_record(resource, obj, rv, None, fields)
        bucket[name] = record
        self._sorted_names.pop((resource, namespace), None)
        self._counts[resource] += 1
        if self._counts[resource] > self._peaks[resource]:
            self._peaks[resource] = self._counts[resource]
        self._index(None, record)
        self._emit(StoreEvent("ADDED", record, None, time.monotonic()))
        return record

    def replace(
        self, resource: str, obj: dict[str, Any], *, expected_rv: int | None = None
    ) -> Record:
        """Store `obj` as the new version of an existing object. Emits MODIFIED.

        Raises KeyError when the object does not exist and ConflictError when `expected_rv`
        is given and is not the current version.
        """
        meta = obj["metadata"]
        namespace = meta.get("namespace", "") if resource in NAMESPACED else ""
        name = meta["name"]
        bucket = self._objects[resource].get(namespace)
        prev = bucket.get(name) if bucket is not None else None
        if prev is None or bucket is None:
            raise KeyError(name)
        if expected_rv is not None and expected_rv != prev.rv:
            raise ConflictError(name)
        meta["uid"] = prev.uid
        rv = self._next_rv()
        meta["resourceVersion"] = str(rv)
        record = self._make_record(resource, obj, rv, prev)
        bucket[name] = record
        self._index(prev, record)
        self._emit(StoreEvent("MODIFIED", record, prev, time.monotonic()))
        if record.deleting and prev.deleting and resource == PODS:
            self._finalize_if_due(prev, record, obj)
        return record

    def update(self, resource: str, namespace: str, name: str, mutate: Mutator) -> Record | None:
        """Parse, let `mutate` edit in place, store. See INTERFACE.md."""
        current = self.get(resource, namespace, name)
        if current is None:
            return None
        obj = current.object()
        if mutate(obj) is False:
            return current
        meta = obj["metadata"]
        meta["name"] = name
        if resource in NAMESPACED:
            meta["namespace"] = namespace
        return self.replace(resource, obj)

    def delete(self, resource: str, namespace: str, name: str) -> Record | None:
        """Remove an object now (no grace, no finalizers). Emits DELETED."""
        bucket = self._objects[resource].get(namespace)
        prev = bucket.pop(name, None) if bucket is not None else None
        if prev is None or bucket is None:
            return None
        if not bucket:
            del self._objects[resource][namespace]
        self._sorted_names.pop((resource, namespace), None)
        timer = self._deletion_timers.pop((namespace, name), None) if resource == PODS else None
        if timer is not None:
            timer.cancel()
        self._counts[resource] -= 1
        rv = self._next_rv()
        record = Record(
            resource=resource,
            namespace=prev.namespace,
            name=prev.name,
            uid=prev.uid,
            rv=rv,
            raw=_with_resource_version(prev, rv),
            labels=prev.labels,
            phase=prev.phase,
            node_name=prev.node_name,
            deleting=prev.deleting,
            fields=prev.fields,
        )
        self._index(prev, None)
        self._emit(StoreEvent("DELETED", record, prev, time.monotonic()))
        return record

    # Pod and node conveniences for the simulated cluster.

    def update_pod(self, namespace: str, name: str, mutate: Mutator) -> Record | None:
        return self.update(PODS, namespace, name, mutate)

    def set_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> Record | None:
        """Replace a pod's status (the kubelet's every write). Emits MODIFIED.

        When the stored JSON ends with the status, the new JSON is the old one up to it (its
        resourceVersion changed) plus the new status: the same bytes as parsing, editing and
        dumping the whole pod would give, for a fraction of the cost.
        """
        current = self.get(PODS, namespace, name)
        if current is None:
            return None
        head = current.status_at
        old_rv = b'"resourceVersion":"%d"' % current.rv
        if head < 0 or current.deleting or current.raw.count(old_rv, 0, head) != 1:
            def apply(obj: dict[str, Any]) -> None:
                obj["status"] = status

            return self.update(PODS, namespace, name, apply)
        return self._spliced(current, current.raw[:head], old_rv, status, current.node_name)

    def bind_pod_with_status(
        self, namespace: str, name: str, node_name: str, status: dict[str, Any]
    ) -> Record | None:
        """Set an unbound pod's spec.nodeName and replace its status in one write (what the
        simulated scheduler and kubelet write at binding). Emits MODIFIED.

        Spliced like `set_pod_status`: `"nodeName"` goes first into the top-level spec (the
        first `"spec":{` of a pod's JSON; ObjectMeta has no such field and nested specs come
        after it).
        """
        current = self.get(PODS, namespace, name)
        if current is None:
            return None
        raw = current.raw
        head = current.status_at
        spec_at = raw.find(b'"spec":{')
        old_rv = b'"resourceVersion":"%d"' % current.rv
        if (head < 0 or current.deleting or current.node_name or not 0 <= spec_at < head
                or b'"nodeName":' in raw or raw.count(old_rv, 0, head) != 1):
            def bind(obj: dict[str, Any]) -> None:
                obj.setdefault("spec", {})["nodeName"] = node_name
                obj["status"] = status

            return self.update(PODS, namespace, name, bind)
        cut = spec_at + len(b'"spec":{')
        field = b'"nodeName":' + orjson.dumps(node_name) + (b"" if raw[cut:cut + 1] == b"}"
                                                             else b",")
        return self._spliced(current, raw[:cut] + field + raw[cut:head], old_rv, status,
                             node_name)

    def _spliced(
        self, current: Record, prefix: bytes, old_rv: bytes, status: dict[str, Any],
        node_name: str,
    ) -> Record:
        """Store `prefix` (the pod's JSON before its status) with a new resourceVersion and
        `status` after it, as the pod's next version."""
        rv = self._next_rv()
        prefix = prefix.replace(old_rv, b'"resourceVersion":"%d"' % rv)
        phase = status.get("phase", "")
        record = Record(
            resource=PODS,
            namespace=current.namespace,
            name=current.name,
            uid=current.uid,
            rv=rv,
            raw=prefix + _STATUS_KEY + orjson.dumps(status) + b"}",
            labels=current.labels,
            phase=phase if isinstance(phase, str) else "",
            node_name=node_name,
            deleting=False,
            status_at=len(prefix),
        )
        self._objects[PODS][current.namespace][current.name] = record
        self._index(current, record)
        self._emit(StoreEvent("MODIFIED", record, current, time.monotonic()))
        return record

    def bind_pod(self, namespace: str, name: str, node_name: str) -> Record | None:
        def apply(obj: dict[str, Any]) -> None:
            obj.setdefault("spec", {})["nodeName"] = node_name

        return self.update(PODS, namespace, name, apply)

    def delete_pod(self, namespace: str, name: str) -> Record | None:
        return self.delete(PODS, namespace, name)

    def put_node(self, node: dict[str, Any]) -> Record:
        """Create a node, or replace it keeping its uid and creationTimestamp."""
        meta = node.setdefault("metadata", {})
        node.setdefault("kind", "Node")
        node.setdefault("apiVersion", "v1")
        current = self.get(NODES, "", meta["name"])
        if current is None:
            return self.create(NODES, node)
        old_meta = current.object()["metadata"]
        meta["creationTimestamp"] = old_meta.get("creationTimestamp")
        return self.replace(NODES, node)

    # ------------------------------------------------------------------ graceful deletion

    def schedule_deletion(self, namespace: str, name: str, uid: str, grace_s: float) -> None:
        """Remove the pod after `grace_s` unless it is gone (or replaced) by then."""
        key = (namespace, name)
        old = self._deletion_timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._deletion_timers[key] = loop.call_later(
            max(0.0, grace_s), self._deletion_due, namespace, name, uid
        )

    def _deletion_due(self, namespace: str, name: str, uid: str) -> None:
        self._deletion_timers.pop((namespace, name), None)
        record = self.get(PODS, namespace, name)
        if record is None or record.uid != uid:
            return
        if record.object()["metadata"].get("finalizers"):
            return  # stays until a patch removes the finalizers
        self.delete(PODS, namespace, name)

    def _finalize_if_due(self, prev: Record, record: Record, obj: dict[str, Any]) -> None:
        """Remove a deleting pod whose last finalizer was just removed, once its grace is over."""
        if obj["metadata"].get("finalizers") or not prev.object()["metadata"].get("finalizers"):
            return
        if (record.namespace, record.name) in self._deletion_timers:
            return  # grace still running
        self.delete(PODS, record.namespace, record.name)

    # ------------------------------------------------------------------ internals

    def _index(self, prev: Record | None, new: Record | None) -> None:
        """Keep the pod indexes (phase counts, per node, unscheduled) current."""
        resource = (new or prev).resource  # type: ignore[union-attr]
        if resource != PODS:
            return
        if prev is not None:
            self._pod_phases[prev.phase] -= 1
            key = (prev.namespace, prev.name)
            on_node = self._pods_by_node.get(prev.node_name)
            if on_node is not None:
                on_node.pop(key, None)
                if not on_node:
                    del self._pods_by_node[prev.node_name]
            self._unscheduled.pop(key, None)
        if new is not None:
            self._pod_phases[new.phase] += 1
            key = (new.namespace, new.name)
            if new.node_name:
                self._pods_by_node.setdefault(new.node_name, {})[key] = new
            elif not new.deleting:
                self._unscheduled[key] = new

    def _emit(self, event: StoreEvent) -> None:
        self._log.append(event)
        if (len(self._log) - self._log_start > self._history_events + self._history_slack
                or self._history_seconds):
            self._trim()
        if self._waiters and not self._wake_scheduled:
            self._wake_scheduled = True
            asyncio.get_running_loop().call_soon(self._wake)
        if not self._listeners:
            return
        if self._dispatching:
            self._pending.append(event)
            return
        self._dispatching = True
        try:
            self._dispatch(event)
            while self._pending:
                self._dispatch(self._pending.pop(0))
        finally:
            self._dispatching = False

    def _dispatch(self, event: StoreEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("store listener %r failed on %s", listener, event.type)
