"""The scheduler-facing executor: submit tasks, sync their states back, recover after crashes.

Its shape is Airflow's ``BaseExecutor`` (``start``, ``execute_async``, ``sync``/``heartbeat``,
``get_event_buffer``, ``running``, ``queued_tasks``, ``open_slots``, ``end``, ``terminate``,
``revoke``), built on two rules:

* The metadata DB is the source of truth. A task is written QUEUED before any message about it
  exists; its state changes only through :mod:`podfleet.executor.transitions`; slot counts are
  counted from the DB on demand instead of being kept by hand (Airflow #35675 leaked slots
  that way). Whatever Redis loses, :meth:`Executor.reconcile` rebuilds from the DB and one pod
  list.
* A side effect happens only after the write that records it has committed: stream entries
  are acknowledged after the DB commit that applied them, and ``enqueued_at`` is set after
  the launch messages are in the broker. A crash between the two repeats the side effect,
  which is idempotent (replayed events change nothing; a resent launch reuses its launch id,
  so its pod name, and the API answers 409).

One instance is used from one thread (the scheduler loop), as Airflow uses its executor.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import socket
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import dramatiq
import orjson
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from podfleet.broker import WATCH_ACTOR_NAME, WATCH_QUEUE, enqueue_envelopes, make_broker
from podfleet.contracts.events import EventKind, EventSource, InvalidEvent, TaskEvent
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchBatch, LaunchRequest, new_launch_id
from podfleet.contracts.naming import (
    EXECUTOR_LABEL,
    LAUNCH_ID_LABEL,
    MANAGED_SELECTOR,
    pod_name,
    safe_label_value,
)
from podfleet.contracts.pod_status import pod_task_state
from podfleet.contracts.redis_keys import EVENTS_GROUP, RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.executor.db import (
    ACTIVE_STATES,
    TASK_ROW_COLUMNS,
    TASK_ROW_MUTABLE,
    ExecutorRecord,
    ExecutorState,
    TaskInstance,
    TaskRow,
    make_engine,
    make_sessionmaker,
)
from podfleet.executor.submission import (
    DuplicateSubmission,
    TaskSubmission,
    ValidTask,
    validate_submissions,
)
from podfleet.executor.transitions import Outcome, apply_event, fail, relaunch
from podfleet.kube.client import KubeApiError, KubeClient
from podfleet.monitoring.metrics import (
    EVENTS_APPLIED,
    EXECUTOR_OPEN_SLOTS,
    EXECUTOR_QUEUED_TASKS,
    EXECUTOR_RUNNING_TASKS,
    TASK_END_TO_END,
    TASKS_SUBMITTED,
)
from podfleet.settings import Settings

log = logging.getLogger("podfleet.executor")

TASKS = cast(sa.Table, TaskInstance.__table__)
EventInfo = str | None
# Bounds on the work one sync does, so a backlog cannot stall the scheduler loop (and the
# events applied so far reach the event buffer while the rest waits for the next sync).
STREAM_READ_COUNT = 1000
MAX_STREAM_READS_PER_SYNC = 20
MAX_DRAIN_SECONDS = 0.5
# A batch whose guarded UPDATE lost a race is read and applied again this many times in
# all before its entries are left for the next sync.
APPLY_ATTEMPTS = 3
# Pods of obsolete launches this executor deleted already, remembered so that each gets one
# delete request however many of its events arrive (Airflow sent 2-3 per pod, #72803).
DELETED_PODS_REMEMBERED = 10_000
MAX_LAUNCHES_PER_SYNC = 10_000
IN_CHUNK = 1000  # ids per IN (...) clause
RELABEL_THREADS = 8


class ExecutorFenced(RuntimeError):
    """Another executor adopted this one's tasks (its heartbeat had expired); it must stop."""


class ExecutorIdInUse(RuntimeError):
    """A live executor (fresh heartbeat, other process) already runs under this id."""


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """A task accepted by submit and not yet sent to the launcher pool (waiting for a slot)."""

    launch_id: str
    command: tuple[str, ...]
    queue: str | None
    queued_at: float


@dataclass(slots=True)
class SlotCounts:
    """Active tasks of one executor, counted from the DB."""

    waiting: int = 0    # QUEUED, not yet sent to the broker
    sent: int = 0       # QUEUED and sent (a launch message exists)
    launched: int = 0
    running: int = 0

    @property
    def occupied(self) -> int:
        """Tasks holding a slot: everything sent to the launcher pool and not finished."""
        return self.sent + self.launched + self.running

    @property
    def active(self) -> int:
        return self.waiting + self.occupied


@dataclass(slots=True)
class _Stream:
    key: str
    consumer: str  # the stream owner's id: a successor re-reads its pending entries by name
    read_pending: bool = True
    adopted_at: float | None = None
    empty_reads: int = 0


_Entry = tuple[_Stream, bytes, "dict[Any, Any] | None"]
_PodRef = tuple[str, str, "str | None"]  # namespace, name, uid when known
_REQUEST_COLUMNS = ("dag_id", "task_id", "run_id", "map_index", "try_number", "launch_id",
                    "command", "queued_at", "queue", "executor_config", "deadline")


@dataclass(slots=True)
class _Applied:
    """What a transaction changed, acted on only after it committed (``_after_commit``)."""

    buffer: dict[TaskKey, tuple[TaskState, EventInfo]] = field(default_factory=dict)
    # Pods to delete whether or not they exist yet (revoke, stuck QUEUED) ...
    pods_to_delete: list[_PodRef] = field(default_factory=list)
    # ... and pods that reported for a launch nobody wants: one delete each.
    stale_pods: list[_PodRef] = field(default_factory=list)
    finished: list[tuple[TaskState, float]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    applied: int = 0
    ignored: int = 0


class _LostRace(Exception):
    """A guarded UPDATE matched fewer rows than it was given: another writer changed some of
    them between the batch's SELECT and its UPDATE."""


class Executor:
    """Runs task tries as Kubernetes pods through the launcher pool; see the module docstring.

    Collaborators are built from ``settings`` unless given (tests and the demo pass their own):
    ``engine`` (metadata DB), ``broker`` (dramatiq, for launch messages), ``redis_client``
    (event streams, watcher lease), ``kube`` (pod list/patch/delete for reconciliation and
    revoke; built on first use).
    """

    def __init__(self, settings: Settings | None = None, *, engine: Engine | None = None,
                 broker: RedisBroker | None = None, redis_client: redis.Redis | None = None,
                 kube: KubeClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or Settings.from_env()
        self.executor_id = self.settings.executor.executor_id
        self.parallelism = self.settings.executor.parallelism
        self.keys = RedisKeys(self.settings.redis.prefix)
        self._clock = clock
        self._owns_engine = engine is None
        self.engine = engine or make_engine(self.settings.database.url)
        self._sessions = make_sessionmaker(self.engine)
        self._copy_supported = (self.engine.dialect.name == "postgresql"
                                and self.engine.dialect.driver == "psycopg")
        self._owns_broker = broker is None
        self.broker = broker or make_broker(self.settings)
        self._owns_redis = redis_client is None
        self.redis: redis.Redis = redis_client or redis.Redis.from_url(
            self.settings.redis.url, socket_timeout=10, socket_connect_timeout=5)
        self._kube = kube
        self._signer = MessageSigner(self.settings.require_signing_key())
        self.event_buffer: dict[TaskKey, tuple[TaskState, EventInfo]] = {}
        self._streams: dict[str, _Stream] = {}
        self._registered = False
        self._started = False
        self._fenced = False
        self._next_heartbeat = 0.0
        self._next_housekeeping = 0.0
        self._next_watcher_check = 0.0
        self._labels = {"executor": self.executor_id}
        # (namespace, name) -> uid of pods deleted for reporting on an obsolete launch.
        self._deleted_pods: OrderedDict[tuple[str, str], str | None] = OrderedDict()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Register, open the event stream, adopt dead executors' tasks and reconcile.

        Reconciliation relaunches QUEUED tasks that never got a pod and completes tasks whose
        pods finished, from one DB query and one pod list (per watched namespace).
        """
        self._register()
        self._ensure_groups()
        self._load_adopted_streams()
        self.adopt_dead_executors()
        self._drain_streams()
        self.reconcile(redis_lost=False)
        self._launch_waiting()
        self._started = True
        log.info("executor %s started", self.executor_id)

    def end(self, timeout: float | None = None, poll_seconds: float = 0.2) -> bool:
        """Sync until no task is queued or running (or ``timeout`` passes), then stop.

        Returns True when everything finished.
        """
        deadline = None if timeout is None else self._clock() + timeout
        done = False
        while True:
            self.sync()
            done = self.slot_counts().active == 0
            if done or (deadline is not None and self._clock() >= deadline):
                break
            time.sleep(poll_seconds)
        self.terminate()
        return done

    def terminate(self) -> None:
        """Stop at once: mark this executor stopped (its unfinished tasks become adoptable)."""
        if self._registered and not self._fenced:
            with self._sessions.begin() as session:
                session.execute(
                    sa.update(ExecutorRecord)
                    .where(ExecutorRecord.id == self.executor_id,
                           ExecutorRecord.state == ExecutorState.RUNNING)
                    .values(state=ExecutorState.STOPPED, heartbeat_at=self._clock()))
        self._registered = False
        self._started = False
        if self._owns_redis:
            self.redis.close()
        if self._owns_broker:
            self.broker.close()
        if self._kube is not None:
            self._kube.close()
        if self._owns_engine:
            self.engine.dispose()

    # --- submit -----------------------------------------------------------------------------

    def execute_async(self, key: Any, command: Sequence[str], queue: str | None = None,
                      executor_config: Any = None) -> None:
        """Airflow's signature: run ``command`` for task try ``key`` as a pod."""
        self.submit(key, command, queue=queue, executor_config=executor_config)

    def submit(self, key: Any, command: Sequence[str], queue: str | None = None,
               executor_config: Any = None, deadline: float | None = None) -> str:
        """Submit one task try; returns its launch id. See :meth:`submit_many`."""
        return self.submit_many([TaskSubmission(key, command, queue, executor_config,
                                                deadline)])[0]

    def submit_many(self, submissions: Iterable[TaskSubmission]) -> list[str]:
        """Validate, write QUEUED rows in one transaction, then send launch messages.

        Raises :class:`~podfleet.executor.submission.InvalidSubmission` (writing nothing) when
        any task is invalid or already queued/running. Launch messages carry
        ``settings.launch.batch_size`` tasks each and all go to Redis in one round trip, for
        the tasks that fit in the open slots; the rest wait for ``sync``. If Redis cannot be
        reached the rows stay QUEUED and are sent by a later ``sync`` or by reconciliation.
        Returns the launch ids, in order.
        """
        self._check_not_fenced()
        tasks = validate_submissions(submissions)
        self._register()
        now = self._clock()
        rows = [self._new_row(task, now) for task in tasks]
        self._insert_rows(rows)
        TASKS_SUBMITTED.labels(**self._labels).inc(len(rows))
        counts = self.slot_counts() if self.parallelism else None
        if counts is not None and counts.waiting > len(rows):
            self._launch_waiting(counts)  # older tasks wait already: keep first-come order
        else:
            room = len(rows) if counts is None else max(
                0, self.parallelism - counts.occupied)
            self._send([self._request_from_row(row) for row in rows[:room]])
        return [str(row["launch_id"]) for row in rows]

    def _new_row(self, task: ValidTask, now: float) -> dict[str, Any]:
        key = task.key
        return {
            "dag_id": key.dag_id, "task_id": key.task_id, "run_id": key.run_id,
            "map_index": key.map_index, "try_number": key.try_number,
            "state": TaskState.QUEUED.value, "queue": task.queue, "command": task.command,
            "executor_config": task.executor_config, "executor_id": self.executor_id,
            "launch_id": new_launch_id(), "attempt": 1, "deadline": task.deadline,
            "pod_name": None, "pod_namespace": None, "pod_uid": None,
            "submitted_at": now, "queued_at": now, "enqueued_at": None, "launched_at": None,
            "running_at": None, "finished_at": None, "reason": None, "updated_at": now,
        }

    def _insert_rows(self, rows: list[dict[str, Any]]) -> None:
        try:
            with self._sessions.begin() as session:
                if self._copy_supported:
                    _copy_rows(session, rows)
                else:
                    session.execute(sa.insert(TASKS), rows)
        except IntegrityError:
            # Some try exists already (rare): sort out which, still in one transaction.
            self._insert_over_existing(rows)

    def _insert_over_existing(self, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows``, resetting finished tries that are submitted again (Airflow reruns
        a try with the same number, e.g. a rescheduled sensor); refuse any still active."""
        by_key = {_row_key(row): row for row in rows}
        with self._sessions.begin() as session:
            existing: list[TaskInstance] = []
            for chunk in _chunks(list(by_key), 500):
                existing.extend(session.scalars(sa.select(TaskInstance).where(
                    sa.tuple_(TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.run_id,
                              TaskInstance.map_index, TaskInstance.try_number)
                    .in_([(k.dag_id, k.task_id, k.run_id, k.map_index, k.try_number)
                          for k in chunk]))))
            active = [row for row in existing if not row.task_state.is_terminal]
            if active:
                raise DuplicateSubmission([
                    f"{row.key} is already {row.state} (launch {row.launch_id})"
                    for row in active])
            for row in existing:
                fresh = by_key.pop(row.key)
                for column, value in fresh.items():
                    setattr(row, column, value)
            if by_key:
                session.execute(sa.insert(TASKS), list(by_key.values()))

    # --- sending launch messages ------------------------------------------------------------

    def _request_from_row(self, row: dict[str, Any]) -> LaunchRequest:
        return LaunchRequest(
            key=_row_key(row), launch_id=row["launch_id"], command=tuple(row["command"]),
            executor_id=self.executor_id, namespace=self.settings.kubernetes.namespace,
            queued_at=row["queued_at"], queue=row["queue"],
            executor_config=row["executor_config"] or {}, deadline=row["deadline"])

    def _send(self, requests: list[LaunchRequest]) -> bool:
        """Enqueue ``requests`` as signed batches in one round trip, then mark them sent."""
        if not requests:
            return True
        size = self.settings.launch.batch_size
        envelopes = [LaunchBatch(tuple(batch)).seal(self._signer)
                     for batch in _chunks(requests, size)]
        try:
            enqueue_envelopes(self.broker, self.settings.launch.queue, envelopes)
        except redis.RedisError as exc:
            log.warning("could not enqueue %d launch(es), they stay queued and are resent: %s",
                        len(requests), exc)
            return False
        now = self._clock()
        with self._sessions.begin() as session:
            for chunk in _chunks([r.launch_id for r in requests], IN_CHUNK):
                session.execute(
                    sa.update(TASKS)
                    .where(TASKS.c.launch_id.in_(chunk),
                           TASKS.c.state == TaskState.QUEUED.value)
                    .values(enqueued_at=now))
        return True

    def _launch_waiting(self, counts: SlotCounts | None = None) -> int:
        """Send the oldest waiting tasks that fit in the open slots; returns how many.

        ``counts``, when given, must be current (sync counts once for this and the gauges).
        """
        if self._fenced:
            return 0
        limit = MAX_LAUNCHES_PER_SYNC
        if self.parallelism:
            counts = counts or self.slot_counts()
            limit = min(limit, self.parallelism - counts.occupied)
            if limit <= 0 or counts.waiting == 0:
                return 0
        elif counts is not None and counts.waiting == 0:
            return 0
        with self._sessions() as session:
            rows = list(session.scalars(
                sa.select(TaskInstance)
                .where(TaskInstance.executor_id == self.executor_id,
                       TaskInstance.state == TaskState.QUEUED.value,
                       TaskInstance.enqueued_at.is_(None))
                .order_by(TaskInstance.queued_at).limit(limit)))
        requests = [self._request_from_row({c: getattr(row, c) for c in _REQUEST_COLUMNS})
                    for row in rows]
        return len(requests) if self._send(requests) else 0

    # --- views (derived from the DB) --------------------------------------------------------

    def slot_counts(self) -> SlotCounts:
        """This executor's active tasks by kind, in one indexed query."""
        counts = SlotCounts()
        with self._sessions() as session:
            result = session.execute(
                sa.select(TaskInstance.state, TaskInstance.enqueued_at.is_(None),
                          sa.func.count())
                .where(TaskInstance.executor_id == self.executor_id,
                       TaskInstance.state.in_(ACTIVE_STATES))
                .group_by(TaskInstance.state, TaskInstance.enqueued_at.is_(None)))
            for state, waiting, number in result:
                if state == TaskState.QUEUED.value:
                    if waiting:
                        counts.waiting += number
                    else:
                        counts.sent += number
                elif state == TaskState.LAUNCHED.value:
                    counts.launched += number
                else:
                    counts.running += number
        return counts

    @property
    def open_slots(self) -> int:
        """Tasks that may still be sent to the launcher pool (parallelism 0: unlimited)."""
        if not self.parallelism:
            return sys.maxsize
        return max(0, self.parallelism - self.slot_counts().occupied)

    @property
    def slots_available(self) -> int:
        """Tasks the scheduler may still hand over: parallelism minus everything active."""
        if not self.parallelism:
            return sys.maxsize
        return max(0, self.parallelism - self.slot_counts().active)

    @property
    def running(self) -> set[TaskKey]:
        """Tasks sent to the launcher pool and not finished (Airflow's ``running``)."""
        with self._sessions() as session:
            rows = session.execute(self._key_query().where(
                sa.or_(TaskInstance.state != TaskState.QUEUED.value,
                       TaskInstance.enqueued_at.is_not(None))))
            return {TaskKey(*row[:5]) for row in rows}

    @property
    def queued_tasks(self) -> dict[TaskKey, QueuedTask]:
        """Tasks accepted but not yet sent, waiting for a slot (Airflow's ``queued_tasks``)."""
        with self._sessions() as session:
            rows = session.execute(self._key_query(
                TaskInstance.launch_id, TaskInstance.command, TaskInstance.queue,
                TaskInstance.queued_at).where(TaskInstance.state == TaskState.QUEUED.value,
                                              TaskInstance.enqueued_at.is_(None)))
            return {TaskKey(*row[:5]): QueuedTask(row[5], tuple(row[6]), row[7], row[8])
                    for row in rows}

    def _key_query(self, *extra: Any) -> sa.Select[Any]:
        return sa.select(TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.run_id,
                         TaskInstance.map_index, TaskInstance.try_number, *extra).where(
            TaskInstance.executor_id == self.executor_id,
            TaskInstance.state.in_(ACTIVE_STATES))

    def get_event_buffer(self, dag_ids: Iterable[str] | None = None
                         ) -> dict[TaskKey, tuple[TaskState, EventInfo]]:
        """Pop and return state changes since the last call (all, or of ``dag_ids`` only)."""
        if dag_ids is None:
            events, self.event_buffer = self.event_buffer, {}
            return events
        wanted = set(dag_ids)
        events = {k: v for k, v in self.event_buffer.items() if k.dag_id in wanted}
        for key in events:
            del self.event_buffer[key]
        return events

    # --- sync -------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Airflow's per-loop call: everything :meth:`sync` does."""
        self.sync()

    def sync(self) -> int:
        """Apply pending task events, send waiting tasks into open slots, and keep house.

        Housekeeping runs on its own clocks: the executor heartbeat, stuck-QUEUED timeouts and
        dead-executor adoption every ``heartbeat_seconds``; the watcher check every lease
        period. Returns how many events changed a task.
        """
        self._check_not_fenced()
        self._register()
        now = self._clock()
        if now >= self._next_heartbeat:
            self._beat(now)
        applied = self._drain_streams()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + self.settings.executor.heartbeat_seconds
            self._expire_stuck_queued(now)
            if self._started:
                self.adopt_dead_executors()
        # One count serves both the launch decision and the gauges (each query scans every
        # active task's index entry, and sync runs back to back in a busy scheduler loop).
        counts = self.slot_counts()
        sent = self._launch_waiting(counts)
        counts.waiting -= sent
        counts.sent += sent
        if now >= self._next_watcher_check:
            self._next_watcher_check = now + self.settings.watcher.lease_seconds
            self._ensure_watcher()
        self._export_gauges(counts)
        return applied

    def _drain_streams(self) -> int:
        """Read and apply stream entries until caught up, or until this sync's bounds (reads,
        time) are used up: what was applied meanwhile should reach the buffer promptly."""
        applied = 0
        redis_lost = False
        give_up_at = time.monotonic() + MAX_DRAIN_SECONDS
        for _ in range(MAX_STREAM_READS_PER_SYNC):
            try:
                entries, lost = self._read_streams()
            except redis.RedisError as exc:
                log.warning("executor %s cannot read its event stream: %s",
                            self.executor_id, exc)
                return applied
            redis_lost = redis_lost or lost
            if not entries:
                break
            try:
                applied += self._apply_entries(entries)
            except Exception:
                # Not acknowledged: read them again (as pending entries) on the next sync.
                for stream in self._streams.values():
                    stream.read_pending = True
                raise
            if len(entries) < STREAM_READ_COUNT and not any(
                    s.read_pending for s in self._streams.values()):
                # Caught up. Reading on while events trickle in would hold back the buffer
                # of what was applied already until 20 reads had passed.
                break
            if time.monotonic() >= give_up_at:
                break
        if redis_lost:
            log.warning("executor %s: event stream gone (Redis restarted empty?); "
                        "reconciling from the DB", self.executor_id)
            self.reconcile(redis_lost=True)
        return applied

    def _read_streams(self) -> tuple[list[_Entry], bool]:
        """One pipelined XREADGROUP per stream: pending entries first (after a crash), then
        new ones. Returns the entries and whether some stream or group had vanished."""
        streams = list(self._streams.values())
        pipe = self.redis.pipeline(transaction=False)
        for stream in streams:
            pipe.xreadgroup(EVENTS_GROUP, stream.consumer,
                            {stream.key: "0" if stream.read_pending else ">"},
                            count=STREAM_READ_COUNT)
        results = pipe.execute(raise_on_error=False)
        entries: list[_Entry] = []
        lost = False
        for stream, result in zip(streams, results, strict=True):
            if isinstance(result, redis.ResponseError):
                if "NOGROUP" not in str(result):
                    raise result
                lost = True
                self._ensure_group(stream.key)
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

    def _apply_entries(self, entries: list[_Entry]) -> int:
        events: list[TaskEvent] = []
        for _stream, entry_id, fields in entries:
            if fields is None:
                continue  # a pending entry already deleted: only its acknowledgement is left
            try:
                events.append(TaskEvent.from_fields(fields))
            except InvalidEvent as exc:
                log.error("dropping malformed event %s: %s", entry_id, exc)
                EVENTS_APPLIED.labels(result="malformed").inc()
        result = self._apply_events(events, self._clock())
        if result is None:
            # Lost the race for its rows again and again: read them again next sync.
            for stream in {entry[0].key: entry[0] for entry in entries}.values():
                stream.read_pending = True
            return 0
        # Acknowledge only after the commit: a crash before this line replays the entries,
        # which the state machine ignores.
        pipe = self.redis.pipeline(transaction=False)
        by_stream: dict[str, list[bytes]] = {}
        for stream, entry_id, _fields in entries:
            by_stream.setdefault(stream.key, []).append(entry_id)
        for key, ids in by_stream.items():
            pipe.xack(key, EVENTS_GROUP, *ids)
            pipe.xdel(key, *ids)
        pipe.execute()
        self._after_commit(result)
        return result.applied

    def _apply_events(self, events: list[TaskEvent], now: float) -> _Applied | None:
        """Apply ``events`` to their rows in one transaction (state machine, idempotent).

        One SELECT reads the batch's rows (by launch id, as plain :class:`TaskRow` data),
        the state machine runs in Python, and one bulk UPDATE writes back the rows that
        changed (see :func:`_write_task_rows`). No row is locked while the batch is computed:
        each UPDATE is guarded by the launch id, state and owner it was computed from, and
        when another writer (a revoke, an executor applying the same events, an adoption)
        changed a row in between, the whole batch is rolled back and computed again from
        fresh rows.
        Returns None when that kept happening (the entries are then read again next sync).
        Raises :class:`ExecutorFenced` when the race was lost to an executor adopting this
        one's rows, leaving the entries unacknowledged for the adopter.
        """
        if not events:
            return _Applied()
        by_launch: dict[str, list[TaskEvent]] = {}
        for event in events:
            by_launch.setdefault(event.launch_id, []).append(event)
        owners: dict[int, str] = {}
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                with self.engine.begin() as connection:
                    rows = _select_task_rows(connection, list(by_launch))
                    self._check_rows_still_mine(rows.values(), owners)
                    result, changes = self._fold_events(by_launch, rows, now)
                    _write_task_rows(connection, changes)
                return result
            except _LostRace as exc:
                log.info("executor %s: %s (attempt %d of %d)", self.executor_id, exc, attempt,
                         APPLY_ATTEMPTS)
        log.warning("executor %s: %d event(s) lost the race for their rows %d times; they "
                    "are applied on a later sync", self.executor_id, len(events),
                    APPLY_ATTEMPTS)
        return None

    def _check_rows_still_mine(self, rows: Iterable[TaskRow], owners: dict[int, str]) -> None:
        """Fence this executor when a row it owned at an earlier attempt has another owner
        now: it was adopted while applying these events, which the adopter must apply."""
        for row in rows:
            before = owners.setdefault(row.id, row.executor_id)
            if before == self.executor_id and row.executor_id != self.executor_id:
                self._fenced = True
                self._check_not_fenced()

    def _fold_events(self, by_launch: dict[str, list[TaskEvent]], rows: dict[str, TaskRow],
                     now: float) -> tuple[_Applied, list[tuple[TaskRow, TaskRow]]]:
        """Run each row's events through the state machine, in stream order; returns what
        to do after commit and the (as read, as changed) pairs of the rows that changed."""
        result = _Applied()
        changes: list[tuple[TaskRow, TaskRow]] = []
        for launch_id, batch in by_launch.items():
            read = rows.get(launch_id)
            row = None if read is None else dataclasses.replace(read)
            for event in batch:
                finished_before = row.finished_at if row is not None else None
                done = apply_event(row, event, now)
                self._note(result, row, event, done.outcome, finished_before)
            if row is not None and read is not None and row != read:
                changes.append((read, row))
        return result, changes

    def _note(self, result: _Applied, row: TaskRow | None, event: TaskEvent,
              outcome: Outcome, finished_before: float | None) -> None:
        result.outcomes[outcome.value] += 1
        live = event.kind is EventKind.STATE and event.state in (
            TaskState.LAUNCHED, TaskState.RUNNING)
        if outcome in (Outcome.APPLIED, Outcome.REQUEUED) and row is not None:
            result.applied += 1
            self._record_change(result, row)
            return
        result.ignored += 1
        if (row is not None and outcome in (Outcome.REPLAY, Outcome.TERMINAL)
                and event.state is row.task_state):
            # A replay of the change the row holds (say, after a crash between commit and
            # acknowledgement): report it again, so a restarted scheduler still hears of it.
            self._record_change(result, row, observe=False)
        # A pod that came alive for a launch nobody wants any more (an obsolete launch of the
        # try, or a try revoked/failed before its pod appeared) must not keep running. The
        # pod whose own events finished the row (its uid is the row's) is not such a pod: a
        # late report about it (the launcher's LAUNCHED, stamped when the batch's creates
        # returned or when a redelivery met 409) can come after its SUCCESS.
        finished_by_this_pod = row is not None and row.pod_uid is not None and (
            event.pod_uid is None or event.pod_uid == row.pod_uid)
        unwanted = outcome is Outcome.STALE or (
            outcome is Outcome.TERMINAL and finished_before is not None
            and event.occurred_at > finished_before and not finished_by_this_pod)
        if live and unwanted and event.pod_name:
            result.stale_pods.append((event.namespace or self.settings.kubernetes.namespace,
                                      event.pod_name, event.pod_uid))

    def _record_change(self, result: _Applied, row: TaskInstance | TaskRow, *,
                       observe: bool = True) -> None:
        """Put the row's new state in the event buffer (after commit) and in the metrics."""
        state = row.task_state
        if row.executor_id == self.executor_id and (
                state is TaskState.RUNNING or state.is_terminal):
            result.buffer[row.key] = (state, row.reason)
        if observe and state.is_terminal and row.finished_at is not None:
            result.finished.append((state, row.finished_at - row.submitted_at))

    def _after_commit(self, result: _Applied) -> None:
        self.event_buffer.update(result.buffer)
        for outcome, number in result.outcomes.items():
            EVENTS_APPLIED.labels(result=outcome).inc(number)
        for state, seconds in result.finished:
            TASK_END_TO_END.labels(state=state.value).observe(max(0.0, seconds))
        if result.pods_to_delete:
            self._delete_pods(result.pods_to_delete)
        if result.stale_pods:
            self._delete_pods(result.stale_pods, once=True)

    # --- housekeeping -----------------------------------------------------------------------

    def _expire_stuck_queued(self, now: float) -> None:
        """Relaunch (new launch id) or fail tasks sent but still podless past the timeout."""
        timeout = self.settings.executor.queued_timeout_seconds
        if not timeout:
            return
        relaunching = self.settings.executor.queued_timeout_action.value == "relaunch"
        result = _Applied()
        with self._sessions.begin() as session:
            stuck = session.scalars(sa.select(TaskInstance).where(
                TaskInstance.executor_id == self.executor_id,
                TaskInstance.state == TaskState.QUEUED.value,
                TaskInstance.enqueued_at < now - timeout).with_for_update())
            for row in stuck:
                reason = f"queued {timeout:g}s without a pod"
                # The old launch's message may still create its pod: remove it if it does.
                result.pods_to_delete.append(
                    (self.settings.kubernetes.namespace, pod_name(row.key, row.launch_id),
                     None))
                if relaunching:
                    relaunch(row, now, reason)
                else:
                    fail(row, now, f"{reason} (PODFLEET_QUEUED_TIMEOUT_ACTION=fail)")
                if row.task_state.is_terminal:
                    self._record_change(result, row)
                log.warning("task %s %s: %s", row.key, row.state, row.reason)
        self._after_commit(result)

    def _beat(self, now: float) -> None:
        with self._sessions.begin() as session:
            updated = _rowcount(session.execute(
                sa.update(ExecutorRecord)
                .where(ExecutorRecord.id == self.executor_id,
                       ExecutorRecord.state == ExecutorState.RUNNING)
                .values(heartbeat_at=now)))
        if not updated:
            self._fenced = True
            self._check_not_fenced()
        self._next_heartbeat = now + self.settings.executor.heartbeat_seconds
        self._load_adopted_streams()

    def _check_not_fenced(self) -> None:
        if self._fenced:
            raise ExecutorFenced(
                f"executor {self.executor_id} was adopted by another executor after its "
                "heartbeat expired; it must not change tasks any more (start a new one)")

    def _ensure_watcher(self) -> None:
        """Start a watcher when none holds the lease: one kick per lease period fleet-wide."""
        try:
            if self.redis.exists(self.keys.watcher_lease):
                return
            kick_key = self.keys.watcher_kick
            ttl_ms = max(1, int(self.settings.watcher.lease_seconds * 1000))
            if not self.redis.set(kick_key, self.executor_id, nx=True, px=ttl_ms):
                return  # another executor or worker kicked it within this lease period
            self.broker.enqueue(dramatiq.Message(
                queue_name=WATCH_QUEUE, actor_name=WATCH_ACTOR_NAME, args=(), kwargs={},
                options={}))
            log.info("no watcher holds the lease: sent a start message")
        except redis.RedisError as exc:
            log.warning("cannot check the watcher lease: %s", exc)

    def _export_gauges(self, counts: SlotCounts) -> None:
        EXECUTOR_QUEUED_TASKS.labels(**self._labels).set(counts.waiting + counts.sent)
        EXECUTOR_RUNNING_TASKS.labels(**self._labels).set(counts.launched + counts.running)
        EXECUTOR_OPEN_SLOTS.labels(**self._labels).set(
            max(0, self.parallelism - counts.occupied) if self.parallelism else -1)

    # --- revoke -----------------------------------------------------------------------------

    def revoke(self, key: Any) -> bool:
        """Mark the task try REVOKED, then delete its pod (already gone is fine).

        Returns False when the try is unknown or already finished. A launch message still in
        the broker may create the pod later: its first event is then about a revoked task,
        and sync deletes that pod.
        """
        task_key = TaskKey.coerce(key)
        now = self._clock()
        with self._sessions.begin() as session:
            row = session.scalars(sa.select(TaskInstance).where(
                TaskInstance.dag_id == task_key.dag_id, TaskInstance.task_id == task_key.task_id,
                TaskInstance.run_id == task_key.run_id,
                TaskInstance.map_index == task_key.map_index,
                TaskInstance.try_number == task_key.try_number).with_for_update()).first()
            if row is None or row.task_state.is_terminal:
                return False
            target = (row.pod_namespace or self.settings.kubernetes.namespace,
                      row.pod_name or pod_name(task_key, row.launch_id), row.pod_uid)
            row.state = TaskState.REVOKED.value
            row.finished_at = now
            row.updated_at = now
            row.reason = "revoked"
            result = _Applied()
            self._record_change(result, row)
        self._after_commit(result)
        self._delete_pods([target])
        return True

    # --- recovery ---------------------------------------------------------------------------

    def reconcile(self, *, redis_lost: bool = False) -> None:
        """Bring this executor's active tasks in line with the cluster: one DB query, one pod
        list per watched namespace.

        A task whose pod exists takes the pod's state (a finished pod completes it). A QUEUED
        task with no pod is sent again under the same launch id (a message still in the broker
        then meets 409, not a second pod). With ``redis_lost`` (the stream, and with it any
        events about these tasks, is gone) a LAUNCHED task with no pod is relaunched and a
        RUNNING one is failed, since what happened to its pod can no longer be known.
        """
        now = self._clock()
        try:
            pods = self._list_pods(MANAGED_SELECTOR)
        except Exception as exc:  # an unreachable API, or no kubeconfig at all
            log.warning("reconciliation skipped, cannot list pods: %s", exc)
            if redis_lost:
                self._resend_all_queued()
            return
        by_launch: dict[str, dict[str, Any]] = {}
        for listed in pods:
            labels = (listed.get("metadata") or {}).get("labels") or {}
            launch_id = labels.get(LAUNCH_ID_LABEL)
            if launch_id:
                by_launch[launch_id] = listed
        result = _Applied()
        with self._sessions.begin() as session:
            rows = session.scalars(sa.select(TaskInstance).where(
                TaskInstance.executor_id == self.executor_id,
                TaskInstance.state.in_(ACTIVE_STATES)).with_for_update())
            for row in rows:
                pod = by_launch.get(row.launch_id)
                if pod is not None:
                    event = _event_from_pod(pod, row, self.executor_id,
                                            self.settings.watcher.fatal_container_reasons)
                    outcome = apply_event(row, event, now).outcome
                    if outcome is Outcome.APPLIED:
                        result.applied += 1
                        self._record_change(result, row)
                elif row.state == TaskState.QUEUED.value:
                    row.enqueued_at = None  # resent below, within the open slots
                elif redis_lost and row.state == TaskState.LAUNCHED.value:
                    relaunch(row, now, "pod not found after Redis lost its state")
                    self._record_change(result, row)
                elif redis_lost and row.state == TaskState.RUNNING.value:
                    fail(row, now, "pod vanished while running (found missing after Redis "
                                   "lost its state)")
                    self._record_change(result, row)
        self._after_commit(result)
        log.info("executor %s reconciled against %d pod(s): %d task(s) updated",
                 self.executor_id, len(pods), result.applied)
        self._launch_waiting()

    def _resend_all_queued(self) -> None:
        with self._sessions.begin() as session:
            session.execute(sa.update(TASKS).where(
                TASKS.c.executor_id == self.executor_id,
                TASKS.c.state == TaskState.QUEUED.value).values(enqueued_at=None))
        self._launch_waiting()

    def adopt_dead_executors(self) -> list[str]:
        """Take over the tasks, event streams and pods of executors that are gone.

        "Gone" means stopped, or a heartbeat older than ``heartbeat_timeout_seconds``; a live
        executor is never adopted. The claim is one conditional UPDATE, so of several
        executors racing for the same dead one exactly one wins. Returns the adopted ids.
        """
        now = self._clock()
        cutoff = now - self.settings.executor.heartbeat_timeout_seconds
        gone = sa.and_(
            ExecutorRecord.id != self.executor_id,
            sa.or_(ExecutorRecord.state == ExecutorState.STOPPED,
                   sa.and_(ExecutorRecord.state == ExecutorState.RUNNING,
                           ExecutorRecord.heartbeat_at < cutoff)))
        with self._sessions() as session:
            candidates = list(session.scalars(sa.select(ExecutorRecord.id).where(gone)))
        adopted: list[str] = []
        for dead in candidates:
            with self._sessions.begin() as session:
                claimed = _rowcount(session.execute(
                    sa.update(ExecutorRecord).where(ExecutorRecord.id == dead, gone)
                    .values(state=ExecutorState.ADOPTED, adopted_by=self.executor_id)))
                if not claimed:
                    continue
                inherited = list(session.scalars(sa.select(ExecutorRecord.id).where(
                    ExecutorRecord.adopted_by == dead)))
                session.execute(sa.update(ExecutorRecord)
                                .where(ExecutorRecord.adopted_by == dead)
                                .values(adopted_by=self.executor_id))
                moved = _rowcount(session.execute(
                    sa.update(TASKS).where(TASKS.c.executor_id == dead,
                                           TASKS.c.state.in_(ACTIVE_STATES))
                    .values(executor_id=self.executor_id, updated_at=now)))
            log.warning("executor %s adopted %d task(s) of dead executor %s",
                        self.executor_id, moved, dead)
            adopted.append(dead)
            for owner in (dead, *inherited):
                self._add_stream(owner, adopted_at=now)
        if adopted:
            self._ensure_groups()
            self._relabel_pods(adopted)
        return adopted

    def _relabel_pods(self, previous_owners: list[str]) -> None:
        """Point adopted pods at this executor, so the watcher routes their events here."""
        values = ",".join(sorted({safe_label_value(o) for o in previous_owners}))
        try:
            pods = self._list_pods(f"{MANAGED_SELECTOR},{EXECUTOR_LABEL} in ({values})")
        except Exception as exc:  # their streams are drained all the same
            log.warning("cannot list adopted pods to relabel them: %s", exc)
            return
        patch = {"metadata": {"labels": {EXECUTOR_LABEL: safe_label_value(self.executor_id)},
                              "annotations": {EXECUTOR_LABEL: self.executor_id}}}

        def relabel(pod: dict[str, Any]) -> None:
            meta = pod.get("metadata") or {}
            try:
                self.kube.patch_pod(meta.get("namespace", ""), meta.get("name", ""), patch)
            except KubeApiError as exc:
                if exc.status != 404:
                    log.warning("cannot relabel adopted pod %s: %s", meta.get("name"), exc)

        with concurrent.futures.ThreadPoolExecutor(RELABEL_THREADS) as pool:
            list(pool.map(relabel, pods))

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def kube(self) -> KubeClient:
        if self._kube is None:
            self._kube = KubeClient.from_settings(self.settings.kubernetes)
        return self._kube

    def _list_pods(self, selector: str) -> list[dict[str, Any]]:
        namespaces = self.settings.kubernetes.watch_namespaces
        if self.settings.kubernetes.namespace not in namespaces and namespaces != ("*",):
            namespaces = (*namespaces, self.settings.kubernetes.namespace)
        if namespaces == ("*",):
            return self.kube.list_pods(None, label_selector=selector).items
        pods: list[dict[str, Any]] = []
        for namespace in namespaces:
            pods.extend(self.kube.list_pods(namespace, label_selector=selector).items)
        return pods

    def _delete_pods(self, targets: list[_PodRef], *, once: bool = False) -> None:
        """Delete pods by name, best effort (the watcher also cleans up finished ones).

        Every pod found and deleted is remembered (the last ``DELETED_PODS_REMEMBERED``).
        With ``once`` (pods that reported for an obsolete launch: each of their events asks
        again) a remembered pod is not deleted again, and one already gone counts as deleted.
        Without it (revoke, stuck QUEUED: the pod may not exist *yet*) the delete is always
        sent, and a 404 is not remembered, so the pod is still deleted once it reports.
        A pod recreated under a remembered name has another uid, and is deleted again.
        """
        for namespace, name, uid in dict.fromkeys(targets):
            if once and self._already_deleted(namespace, name, uid):
                continue
            try:
                found = self.kube.delete_pod(namespace, name)
            except Exception as exc:
                log.warning("cannot delete pod %s/%s: %s", namespace, name, exc)
                continue
            if found or once:
                self._deleted_pods[(namespace, name)] = uid
                self._deleted_pods.move_to_end((namespace, name))
                while len(self._deleted_pods) > DELETED_PODS_REMEMBERED:
                    self._deleted_pods.popitem(last=False)

    def _already_deleted(self, namespace: str, name: str, uid: str | None) -> bool:
        if (namespace, name) not in self._deleted_pods:
            return False
        deleted_uid = self._deleted_pods[(namespace, name)]
        return deleted_uid is None or uid is None or deleted_uid == uid

    def _register(self) -> None:
        if self._registered:
            return
        now = self._clock()
        hostname, pid = socket.gethostname(), os.getpid()
        with self._sessions.begin() as session:
            record = session.get(ExecutorRecord, self.executor_id, with_for_update=True)
            if record is None:
                session.add(ExecutorRecord(
                    id=self.executor_id, hostname=hostname, pid=pid, started_at=now,
                    heartbeat_at=now, state=ExecutorState.RUNNING, adopted_by=None))
            else:
                alive = (record.state == ExecutorState.RUNNING and record.heartbeat_at
                         > now - self.settings.executor.heartbeat_timeout_seconds)
                if alive and (record.hostname, record.pid) != (hostname, pid):
                    raise ExecutorIdInUse(
                        f"executor id {self.executor_id!r} is in use by pid {record.pid} on "
                        f"{record.hostname} (heartbeat {now - record.heartbeat_at:.0f}s ago); "
                        "set a different PODFLEET_EXECUTOR_ID")
                record.hostname, record.pid = hostname, pid
                record.started_at = record.heartbeat_at = now
                record.state = ExecutorState.RUNNING
                record.adopted_by = None
        self._registered = True
        self._next_heartbeat = now + self.settings.executor.heartbeat_seconds
        if self.keys.events(self.executor_id) not in self._streams:
            self._add_stream(self.executor_id, adopted_at=None)
            self._ensure_group(self.keys.events(self.executor_id))

    def _add_stream(self, owner: str, adopted_at: float | None) -> None:
        key = self.keys.events(owner)
        if key not in self._streams:
            self._streams[key] = _Stream(key=key, consumer=owner, adopted_at=adopted_at)

    def _load_adopted_streams(self) -> None:
        """Follow the DB: streams of executors adopted by this one (also in an earlier life
        under the same id), and not of those that came back to life and reclaimed theirs."""
        with self._sessions() as session:
            adopted = set(session.scalars(sa.select(ExecutorRecord.id).where(
                ExecutorRecord.adopted_by == self.executor_id,
                ExecutorRecord.state == ExecutorState.ADOPTED)))
        now = self._clock()
        for owner in adopted:
            if self.keys.events(owner) not in self._streams:
                self._add_stream(owner, adopted_at=now)
                self._ensure_group(self.keys.events(owner))
        for key, stream in list(self._streams.items()):
            if stream.consumer != self.executor_id and stream.consumer not in adopted:
                del self._streams[key]

    def _ensure_groups(self) -> None:
        for key in self._streams:
            self._ensure_group(key)

    def _ensure_group(self, key: str) -> None:
        try:
            self.redis.xgroup_create(key, EVENTS_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except redis.RedisError as exc:
            log.warning("cannot create the consumer group of %s yet: %s", key, exc)


def _event_from_pod(pod: dict[str, Any], row: TaskInstance, executor_id: str,
                    fatal_reasons: frozenset[str]) -> TaskEvent:
    state, reason = pod_task_state(pod, fatal_reasons)
    meta = pod.get("metadata") or {}
    return TaskEvent(
        key=row.key, launch_id=row.launch_id,
        executor_id=executor_id, kind=EventKind.STATE, source=EventSource.EXECUTOR,
        state=state, reason=reason, pod_name=meta.get("name"),
        namespace=meta.get("namespace"), pod_uid=meta.get("uid"))


_COPY_COLUMNS = ("dag_id", "task_id", "run_id", "map_index", "try_number", "state", "queue",
                 "command", "executor_config", "executor_id", "launch_id", "attempt",
                 "deadline", "submitted_at", "queued_at", "updated_at")
_JSON_COLUMNS = frozenset({"command", "executor_config"})


def _copy_rows(session: Any, rows: list[dict[str, Any]]) -> None:
    """Insert new rows with PostgreSQL's COPY, in the session's transaction.

    psycopg sends an executemany as one INSERT per row; COPY streams them and lets the server
    do far less work per row (submit_many is the hot path: ≥ 5,000 tasks/s is the target).
    Columns left out are NULL. A unique violation fails the whole COPY, like the INSERT would.
    """
    import psycopg

    connection = session.connection().connection.driver_connection
    names = ", ".join(_COPY_COLUMNS)
    try:
        with connection.cursor() as cursor, cursor.copy(
                f"COPY task_instances ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([orjson.dumps(row[c]).decode() if c in _JSON_COLUMNS
                                else row[c] for c in _COPY_COLUMNS])
    except psycopg.errors.UniqueViolation as exc:
        # Raised by the driver itself here: present it as SQLAlchemy would.
        raise IntegrityError(f"COPY task_instances ({names})", None, exc) from exc


def _select_task_rows(connection: Connection, launch_ids: list[str]) -> dict[str, TaskRow]:
    """The rows whose current launch is one of ``launch_ids``, by launch id."""
    columns = [TASKS.c[name] for name in TASK_ROW_COLUMNS]
    rows: dict[str, TaskRow] = {}
    for chunk in _chunks(launch_ids, IN_CHUNK):
        for values in connection.execute(sa.select(*columns).where(
                TASKS.c.launch_id.in_(chunk))):
            row = TaskRow(*values)
            rows[row.launch_id] = row
    return rows


# A row is written only if it still holds what its new values were computed from: the same
# launch, state and owner (every change the state machine or an adoption makes changes one).
_GUARD_COLUMNS = ("id", "launch_id", "state", "executor_id")


def _write_task_rows(connection: Connection, changes: list[tuple[TaskRow, TaskRow]]) -> None:
    """Write each (as read, as changed) pair's new values, guarded by its old ones.

    PostgreSQL gets one ``UPDATE ... FROM unnest(<one array per column>)``: a single
    statement of fixed shape however many rows, planned once. SQLite (one writer at a time,
    in-process) gets an executemany. Raises :class:`_LostRace` when some row no longer
    matched its guard.
    """
    if not changes:
        return
    params: dict[str, list[Any]] = {f"old_{c}": [getattr(read, c) for read, _ in changes]
                                    for c in _GUARD_COLUMNS}
    params.update({f"new_{c}": [getattr(new, c) for _, new in changes]
                   for c in TASK_ROW_MUTABLE})
    if connection.dialect.name == "postgresql":
        matched = _rowcount(connection.execute(_BULK_UPDATE_POSTGRESQL, params))
    else:
        statement = sa.update(TASKS).where(
            *[TASKS.c[c] == sa.bindparam(f"old_{c}") for c in _GUARD_COLUMNS]).values(
            {c: sa.bindparam(f"new_{c}") for c in TASK_ROW_MUTABLE})
        names = list(params)
        matched = _rowcount(connection.execute(statement, [
            dict(zip(names, values, strict=True))
            for values in zip(*params.values(), strict=True)]))
    if matched != len(changes):
        raise _LostRace(f"{len(changes) - matched} of {len(changes)} row(s) changed by "
                        "another writer meanwhile")


def _bulk_update_postgresql() -> sa.Update:
    from sqlalchemy.dialects.postgresql import ARRAY

    columns = [(f"old_{c}", TASKS.c[c].type) for c in _GUARD_COLUMNS] + [
        (f"new_{c}", TASKS.c[c].type) for c in TASK_ROW_MUTABLE]
    changes = sa.func.unnest(*[sa.bindparam(name, type_=ARRAY(type_))
                               for name, type_ in columns]).table_valued(
        *[sa.column(name, type_) for name, type_ in columns], name="changes").render_derived()
    return sa.update(TASKS).where(
        *[TASKS.c[c] == changes.c[f"old_{c}"] for c in _GUARD_COLUMNS]).values(
        {c: changes.c[f"new_{c}"] for c in TASK_ROW_MUTABLE})


_BULK_UPDATE_POSTGRESQL = _bulk_update_postgresql()


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (``Session.execute`` is typed as returning a plain Result)."""
    return int(cast(sa.CursorResult[Any], result).rowcount)


def _row_key(row: dict[str, Any]) -> TaskKey:
    return TaskKey(row["dag_id"], row["task_id"], row["run_id"], row["map_index"],
                   row["try_number"])


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


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])

