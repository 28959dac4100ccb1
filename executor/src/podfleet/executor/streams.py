"""The Redis event streams an executor consumes: its own, and those of executors it adopted.

Each stream is read through one consumer group, under its owner's consumer name, so that a
successor (or the same executor restarted) re-reads the entries its predecessor read but never
acknowledged. Entries are acknowledged (and deleted) only after the DB commit that applied
them; a crash in between replays them, which the state machine ignores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from podfleet.contracts.redis_keys import EVENTS_GROUP, RedisKeys
from podfleet.executor.db import ExecutorRecord, ExecutorState

log = logging.getLogger("podfleet.executor")

# Bounds on the work one sync does, so a backlog cannot stall the scheduler loop (and the
# events applied so far reach the event buffer while the rest waits for the next sync).
STREAM_READ_COUNT = 1000
MAX_STREAM_READS_PER_SYNC = 20
MAX_DRAIN_SECONDS = 0.5


@dataclass(slots=True)
class Stream:
    key: str
    consumer: str  # the stream owner's id: a successor re-reads its pending entries by name
    read_pending: bool = True
    adopted_at: float | None = None
    empty_reads: int = 0


Entry = tuple[Stream, bytes, "dict[Any, Any] | None"]


class EventStreams:
    """The streams one executor reads, by key; reads them in one round trip, acks entries."""

    def __init__(self, redis_client: redis.Redis, keys: RedisKeys, executor_id: str,
                 sessions: sessionmaker[Session], clock: Callable[[], float]) -> None:
        self.redis = redis_client
        self.keys = keys
        self.executor_id = executor_id
        self._sessions = sessions
        self._clock = clock
        self.streams: dict[str, Stream] = {}

    def __contains__(self, key: object) -> bool:
        return key in self.streams

    def add(self, owner: str, adopted_at: float | None) -> None:
        key = self.keys.events(owner)
        if key not in self.streams:
            self.streams[key] = Stream(key=key, consumer=owner, adopted_at=adopted_at)

    def load_adopted(self) -> None:
        """Follow the DB: streams of executors adopted by this one (also in an earlier life
        under the same id), and not of those that came back to life and reclaimed theirs."""
        with self._sessions() as session:
            adopted = set(session.scalars(sa.select(ExecutorRecord.id).where(
                ExecutorRecord.adopted_by == self.executor_id,
                ExecutorRecord.state == ExecutorState.ADOPTED)))
        now = self._clock()
        for owner in adopted:
            if self.keys.events(owner) not in self.streams:
                self.add(owner, adopted_at=now)
                self.ensure_group(self.keys.events(owner))
        for key, stream in list(self.streams.items()):
            if stream.consumer != self.executor_id and stream.consumer not in adopted:
                del self.streams[key]

    def ensure_groups(self) -> None:
        for key in self.streams:
            self.ensure_group(key)

    def ensure_group(self, key: str) -> None:
        try:
            self.redis.xgroup_create(key, EVENTS_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except redis.RedisError as exc:
            log.warning("cannot create the consumer group of %s yet: %s", key, exc)

    @property
    def any_pending(self) -> bool:
        """Whether some stream still has pending entries to re-read."""
        return any(s.read_pending for s in self.streams.values())

    def read_pending_again(self, streams: Iterable[Stream] | None = None) -> None:
        """Read the pending entries of ``streams`` (all by default) again on the next read."""
        for stream in self.streams.values() if streams is None else streams:
            stream.read_pending = True

    def read(self) -> tuple[list[Entry], bool]:
        """One pipelined XREADGROUP per stream: pending entries first (after a crash), then
        new ones. Returns the entries and whether some stream or group had vanished."""
        streams = list(self.streams.values())
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xreadgroup(EVENTS_GROUP, stream.consumer,
                            {stream.key: "0" if stream.read_pending else ">"},
                            count=STREAM_READ_COUNT)
        results = pipe.execute(raise_on_error=False)
        entries: list[Entry] = []
        lost = False
        for stream, result in zip(streams, results, strict=True):
            if isinstance(result, redis.ResponseError):
                if "NOGROUP" not in str(result):
                    raise result
                lost = True
                self.ensure_group(stream.key)
                stream.read_pending = False
                continue
            if isinstance(result, Exception):
                raise result
            got = list(_stream_entries(result))
            if stream.read_pending and not got:
                stream.read_pending = False
            stream.empty_reads = 0 if got else stream.empty_reads + 1
            entries.extend((stream, entry_id, fields) for entry_id, fields in got)
        return entries, lost

    def acknowledge(self, entries: list[Entry]) -> None:
        """Acknowledge and delete ``entries``, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        by_stream: dict[str, list[bytes]] = {}
        for stream, entry_id, _fields in entries:
            by_stream.setdefault(stream.key, []).append(entry_id)
        for key, ids in by_stream.items():
            pipe.xack(key, EVENTS_GROUP, *ids)
            pipe.xdel(key, *ids)
        pipe.execute()


def _stream_entries(result: Any) -> Iterator[tuple[bytes, dict[Any, Any] | None]]:
    """(id, fields) pairs of an XREADGROUP reply, in RESP2 (list) or RESP3 (dict) form."""
    if not result:
        return
    streams = result.items() if isinstance(result, dict) else result
    for item in streams:
        messages = item[1]
        if messages and isinstance(messages[0], list) and messages[0] and isinstance(
                messages[0][0], list | tuple):
            messages = messages[0]  # RESP3 wraps the list once more
        yield from messages  # fields are None for a pending entry deleted meanwhile
