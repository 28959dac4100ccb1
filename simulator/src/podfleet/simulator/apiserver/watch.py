"""The watch stream, as a real API server's watch cache serves it.

A watch is a chunked `application/json` response carrying one JSON event per line,
`{"type": ..., "object": ...}`, each written as its own HTTP chunk (the official Python
client's line splitter is quadratic when many events arrive in one segment).

Semantics kept from the real server:
- `resourceVersion` unset or "0": synthetic ADDED events for the current state, then changes.
- a resourceVersion N: every change with RV > N, in order, exactly once; if N has left the
  history window, one ERROR event carrying a 410 Expired `Status`, and the stream ends.
- selectors are applied to both the old and the new state of each change: an object that
  starts matching arrives as ADDED, one that stops matching as DELETED (with its previous
  content and the change's RV), as from the watch cache.
- `allowWatchBookmarks=true`: periodic BOOKMARK events with only metadata.resourceVersion.
- `timeoutSeconds`: the stream ends cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from podfleet.simulator.apiserver.errors import status_body
from podfleet.simulator.apiserver.metadata import MetadataTarget, partial_object_bytes
from podfleet.simulator.apiserver.selectors import Selector
from podfleet.simulator.apiserver.tables import TablePrinter, table_row
from podfleet.simulator.store import ExpiredError, ObjectStore, Record, StoreEvent

_PREFIX = {
    "ADDED": b'{"type":"ADDED","object":',
    "MODIFIED": b'{"type":"MODIFIED","object":',
    "DELETED": b'{"type":"DELETED","object":',
    "BOOKMARK": b'{"type":"BOOKMARK","object":',
    "ERROR": b'{"type":"ERROR","object":',
}
_SUFFIX = b"}\n"
# How long an idle watch sleeps before checking that its client is still there.
_IDLE_POLL_S = 5.0
_BATCH = 1000


@dataclass(frozen=True)
class WatchRequest:
    """What one watch asks for, from its query parameters."""

    resource: str
    kind: str
    namespace: str
    selector: Selector
    resource_version: str
    timeout_s: float | None
    bookmarks: bool
    send_initial_events: bool
    bookmark_interval_s: float
    drop_after_s: float | None
    #: Events carry Tables printed so (`as=Table`), or full objects when None.
    table: TablePrinter | None
    include_object: str
    #: Events carry PartialObjectMetadata (``metadata.py``) instead of full objects.
    as_metadata: MetadataTarget | None = None
    #: Read while the watch runs (the fault injector's ``watch_drop_seconds``), so a drop
    #: configured while a watch is open cuts it too once it is that old; else ``drop_after_s``.
    drop_after: Callable[[], float | None] | None = None
    #: The kind's apiVersion, as bookmarks carry it.
    api_version: str = "v1"


def _with_rv(raw: bytes, rv: int) -> bytes:
    obj = orjson.loads(raw)
    obj["metadata"]["resourceVersion"] = str(rv)
    return orjson.dumps(obj)


class _Stream:
    """Writes events of one watch to its response."""

    def __init__(self, response: web.StreamResponse, spec: WatchRequest) -> None:
        self.response = response
        self.spec = spec

    async def send(self, event_type: str, raw: bytes) -> None:
        if self.spec.table is not None and event_type in ("ADDED", "MODIFIED", "DELETED"):
            raw = self._as_table(raw)
        elif self.spec.as_metadata is not None and event_type != "ERROR":
            raw = partial_object_bytes(raw, self.spec.as_metadata)
        await self.response.write(_PREFIX[event_type] + raw + _SUFFIX)

    def _as_table(self, raw: bytes) -> bytes:
        printer = self.spec.table
        assert printer is not None
        obj = orjson.loads(raw)
        body: dict[str, Any] = {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
            "columnDefinitions": list(printer.columns),
            "rows": [table_row(printer, obj, self.spec.include_object, time.time())],
        }
        return orjson.dumps(body)

    async def bookmark(self, rv: int, *, initial_events_end: bool = False) -> None:
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_events_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.spec.kind, "apiVersion": self.spec.api_version, "metadata": metadata}
        await self.send("BOOKMARK", orjson.dumps(obj))

    async def expired(self, exc: ExpiredError) -> None:
        status = status_body(410, "Expired", str(exc))
        await self.send("ERROR", orjson.dumps(status))


def _translate(event: StoreEvent, spec: WatchRequest) -> tuple[str, bytes] | None:
    """The event this watcher should see for a store change, or None."""
    record = event.record
    if record.resource != spec.resource:
        return None
    if spec.namespace and record.namespace != spec.namespace:
        return None
    selector = spec.selector
    if selector.empty:
        return event.type, record.raw
    prev = event.prev
    if event.type == "DELETED":
        return ("DELETED", record.raw) if prev is not None and selector.matches(prev) else None
    now_matches = selector.matches(record)
    before = prev is not None and selector.matches(prev)
    if now_matches:
        return ("MODIFIED" if before else "ADDED"), record.raw
    if before and prev is not None:
        return "DELETED", _with_rv(prev.raw, record.rv)
    return None


def _initial_state(store: ObjectStore, spec: WatchRequest) -> list[Record]:
    namespace = spec.namespace or None
    records = store.list(spec.resource, namespace)
    if spec.selector.empty:
        return records
    return [r for r in records if spec.selector.matches(r)]


async def serve_watch(
    request: web.Request, store: ObjectStore, spec: WatchRequest, closing: asyncio.Event
) -> web.StreamResponse:
    """Stream events until timeout, client disconnect, expiry or server shutdown."""
    cursor: int
    initial: list[Record] = []
    expired_at_start: ExpiredError | None = None
    if spec.resource_version in ("", "0"):
        cursor = store.resource_version
        initial = _initial_state(store, spec)
    else:
        cursor = int(spec.resource_version)
        if cursor < store.window_start_rv:
            expired_at_start = ExpiredError(cursor, store.window_start_rv)

    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"},
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    stream = _Stream(response, spec)
    loop = asyncio.get_running_loop()
    started = loop.time()
    end_at = started + spec.timeout_s if spec.timeout_s else None

    def drop_deadline() -> float | None:
        after = spec.drop_after() if spec.drop_after is not None else spec.drop_after_s
        return started + after if after else None

    drop_at = drop_deadline()
    next_bookmark = started + spec.bookmark_interval_s if spec.bookmarks else None
    dropped = False
    try:
        if expired_at_start is not None:
            await stream.expired(expired_at_start)
            return response
        for record in initial:
            await stream.send("ADDED", record.raw)
        if spec.bookmarks and spec.send_initial_events:
            await stream.bookmark(cursor, initial_events_end=True)
        del initial
        while not closing.is_set():
            try:
                events = store.events_after(cursor, _BATCH)
            except ExpiredError as exc:
                await stream.expired(exc)
                break
            for event in events:
                cursor = event.record.rv
                translated = _translate(event, spec)
                if translated is not None:
                    await stream.send(*translated)
            now = loop.time()
            if end_at is not None and now >= end_at:
                break
            drop_at = drop_deadline()
            if drop_at is not None and now >= drop_at:
                dropped = True
                break
            if next_bookmark is not None and now >= next_bookmark:
                await stream.bookmark(cursor)
                next_bookmark = now + spec.bookmark_interval_s
            if events:
                await asyncio.sleep(0)  # let writers and other watchers run between batches
                continue
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            # A live drop setting is looked at again at least every second.
            wait = _IDLE_POLL_S if spec.drop_after is None else min(_IDLE_POLL_S, 1.0)
            for deadline in (end_at, drop_at, next_bookmark):
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - now))
            await store.wait_for_change(cursor, wait)
    except ConnectionError:
        dropped = True
    if dropped:
        if request.transport is not None:
            request.transport.abort()
        return response
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response
