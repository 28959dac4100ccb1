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

One instance is used from one thread at a time: the caller's, or the background thread of
an :class:`~podfleet.executor.executor_thread.ExecutorThread` driving it (Airflow's
``PodFleetExecutor`` does, so its scheduler loop never waits on the DB, Redis or the API).
:class:`Executor` is the facade over small collaborators, one idea each:
:mod:`~podfleet.executor.registry` (registration, heartbeat, fencing),
:mod:`~podfleet.executor.rows` (bulk SQL over task rows),
:mod:`~podfleet.executor.launches` (launch messages within the open slots),
:mod:`~podfleet.executor.slots` (counts and views derived from the DB),
:mod:`~podfleet.executor.streams` (reading and acknowledging event streams),
:mod:`~podfleet.executor.batch` (applying a batch of events to its rows),
:mod:`~podfleet.executor.pods` (pod list and delete),
:mod:`~podfleet.executor.housekeeping` (stuck launches, watcher nudge),
:mod:`~podfleet.executor.reconcile` (reconciliation and adoption) and
:mod:`~podfleet.executor.resync` (the periodic, level-triggered check of tasks against pods).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.engine import Engine

from podfleet.broker import make_broker
from podfleet.contracts.clusters import DEFAULT_CLUSTER, ClusterSpec
from podfleet.contracts.events import InvalidEvent, TaskEvent
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import pod_name
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.executor.batch import Applied, EventBatches, EventInfo, record_change
from podfleet.executor.db import TaskInstance, make_engine, make_sessionmaker
from podfleet.executor.housekeeping import (
    ensure_watcher,
    expire_stuck_pending,
    expire_stuck_queued,
)
from podfleet.executor.launches import LaunchSender
from podfleet.executor.logs import TaskLog, TaskLogs
from podfleet.executor.pods import ExecutorPods, PodRef
from podfleet.executor.queue_watch import UnconsumedQueues
from podfleet.executor.reconcile import Reconciler, placed_cluster
from podfleet.executor.registry import ExecutorFenced, ExecutorIdInUse, Registration
from podfleet.executor.repair import RepairContext
from podfleet.executor.resync import Resync
from podfleet.executor.rows import NewTaskRow, insert_rows
from podfleet.executor.shutdown import fail_fast_kube, fail_fast_redis, left_for_adoption
from podfleet.executor.slots import (
    ActiveTry,
    QueuedTask,
    SlotCounts,
    active_tries,
    count_slots,
    export_gauges,
    queued_tasks,
    running_keys,
)
from podfleet.executor.streams import (
    MAX_DRAIN_SECONDS,
    MAX_STREAM_READS_PER_SYNC,
    STREAM_READ_COUNT,
    Entry,
    EventStreams,
)
from podfleet.executor.submission import TaskSubmission, validate_submissions
from podfleet.executor.tracing import TaskTracer
from podfleet.executor.transitions import Outcome
from podfleet.kube.client import KubeClient, RequestObserver
from podfleet.kube.clusters import ClientFactory, ClusterClients
from podfleet.kube.errors import KubeError, Unreachable
from podfleet.monitoring.metrics import (
    CLOCK_SKEW,
    EVENTS_APPLIED,
    POD_DISRUPTIONS,
    TASK_END_TO_END,
    TASK_RELAUNCHES,
    TASK_REPORT_LATENCY,
    TASKS_SUBMITTED,
    ClockReference,
    DisruptionReason,
    RelaunchCause,
    kube_request_observer,
    preinitialise,
)
from podfleet.pods import PodFactory, task_namespace
from podfleet.redis_client import connect as connect_redis
from podfleet.redis_client.clock import RedisClock
from podfleet.settings import Settings

# Terminal reports remembered per executor, so a replayed one is not reported twice.
TERMINAL_REPORTS_KEPT = 200_000

__all__ = ["Executor", "ExecutorFenced", "ExecutorIdInUse", "QueuedTask", "SlotCounts"]

log = logging.getLogger("podfleet.executor")


class Executor:
    """Runs task tries as Kubernetes pods through the launcher pool; see the module docstring.

    Collaborators are built from ``settings`` unless given (tests and the demo pass their own):
    ``engine`` (metadata DB), ``broker`` (dramatiq, for launch messages), ``redis_client``
    (event streams, watcher lease), ``kube`` (pod list/patch/delete for reconciliation and
    revoke; built on first use), ``tracer`` (spans of finished tries; by default from the
    ``OTEL_EXPORTER_OTLP_*`` variables, see :mod:`~podfleet.executor.tracing`).
    """

    def __init__(self, settings: Settings | None = None, *, engine: Engine | None = None,
                 broker: RedisBroker | None = None, redis_client: redis.Redis | None = None,
                 kube: KubeClient | None = None, tracer: TaskTracer | None = None,
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
        self.redis: redis.Redis = redis_client or connect_redis(
            self.settings.redis.url, socket_timeout=10, socket_connect_timeout=5)
        # One API client per configured cluster, each built on first use; a given ``kube``
        # is the default cluster's (tests).
        self._built_kube: list[KubeClient] = []
        self.clusters = ClusterClients(
            self.settings.clusters.configured,
            observe=kube_request_observer,
            factory=self._make_kube if kube is None else self._given_kube(kube))
        #: Spans of finished tries (see :mod:`~podfleet.executor.tracing`), or None.
        self.tracer = tracer if tracer is not None else TaskTracer.from_environment(os.environ)
        #: The last :meth:`sync` met an outage of Redis or the Kubernetes API.
        self.sync_interrupted = False
        self._ending = False
        self.event_buffer: dict[TaskKey, tuple[TaskState, EventInfo]] = {}
        self._started = False
        self._next_housekeeping = 0.0
        self._next_watcher_check = 0.0
        self._labels = {"executor": self.executor_id}
        self._next_outage_log = 0.0
        self._terminal_reported: OrderedDict[TaskKey, TaskState] = OrderedDict()
        # Every series at 0 from the start, so rate() sees the first of each kind
        TASKS_SUBMITTED.labels(**self._labels)
        preinitialise(EVENTS_APPLIED, result=[*(o.value for o in Outcome), "malformed"])
        preinitialise(TASK_END_TO_END, state=[s for s in TaskState if s.is_terminal])
        preinitialise(POD_DISRUPTIONS, reason=DisruptionReason)
        preinitialise(TASK_RELAUNCHES, cause=RelaunchCause)
        self._registration = Registration(
            self.settings, self._sessions, clock,
            observe_skew=CLOCK_SKEW.labels(reference=ClockReference.DATABASE).set)
        # Deadlines are judged on Redis' clock, as the launcher judges them.
        self._deadline_clock = RedisClock(
            self.redis, observe=CLOCK_SKEW.labels(reference=ClockReference.REDIS).set)
        self._streams = EventStreams(self.redis, self.keys, self.executor_id, self._sessions,
                                     clock)
        self._pods = ExecutorPods(self.settings.clusters.configured,
                                  self.settings.kubernetes.namespace, self.clusters.client)
        self._unconsumed = UnconsumedQueues(self.redis, self.settings)
        # Builds each submitted task's pod as the launcher will, to check the pod policy.
        self._pod_factory = PodFactory(self.settings)
        self._batches = EventBatches(self.engine, self._registration,
                                     self.settings.kubernetes.namespace,
                                     self.settings.executor.disruption_retries)
        self._launches = LaunchSender(
            self.settings, self._registration, self._sessions, self.broker,
            MessageSigner(self.settings.require_signing_key()), clock,
            deadline_clock=self._deadline_clock.now)
        repairs = RepairContext(self.settings, self._sessions, self._pods, clock,
                                self._after_commit)
        self._reconciler = Reconciler(repairs, self._streams, self._launches.launch_waiting)
        self.resync = Resync(repairs, self._registration.check_not_fenced)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Register, open the event stream, adopt dead executors' tasks and reconcile.

        Reconciliation relaunches QUEUED tasks that never got a pod and completes tasks whose
        pods finished, from one DB query and one pod list (per watched namespace).
        """
        self._register()
        self._streams.ensure_groups()
        self._streams.load_adopted()
        self.adopt_dead_executors()
        self._drain_streams()
        self.reconcile(redis_lost=False)
        self._launches.launch_waiting()
        self._started = True
        log.info("executor %s started", self.executor_id)

    def end(self, timeout: float | None = None, poll_seconds: float = 0.2) -> bool:
        """Sync until no task is queued or running, then stop; returns True when everything
        finished.

        Bounded: it stops waiting when ``timeout`` passes or when a sync finds Redis or the
        Kubernetes API out (no event would arrive), and meanwhile each call to them fails
        fast (:mod:`~podfleet.executor.shutdown`). What is left is logged and adopted by the
        next executor.
        """
        self.begin_ending()
        deadline = None if timeout is None else self._clock() + timeout
        done = False
        while True:
            self.sync()
            done = self.slot_counts().active == 0
            if done or self.sync_interrupted or (deadline is not None
                                                  and self._clock() >= deadline):
                break
            time.sleep(poll_seconds)
        self.terminate()
        return done

    def begin_ending(self) -> None:
        """From now on, every Redis command and Kubernetes request fails fast (no retries,
        :data:`~podfleet.executor.shutdown.CALL_SECONDS` at most): the executor is ending."""
        if self._owns_redis:
            fail_fast_redis(self.redis)
        if self._owns_broker:
            fail_fast_redis(self.broker.client)
        for client in self._built_kube:
            fail_fast_kube(client)
        self._ending = True

    def terminate(self) -> None:
        """Stop at once: mark this executor stopped (its unfinished tasks become adoptable),
        and log how many it leaves queued and running."""
        try:
            left: SlotCounts | None = self.slot_counts()
        except sa.exc.SQLAlchemyError:
            left = None
        self._registration.stop()
        self._started = False
        self.close()
        log.info("%s", left_for_adoption(self.executor_id, left))

    def close(self) -> None:
        """Release the connections this executor opened (Redis, broker, Kubernetes API, DB,
        tracer) and mark nothing: for one that never started, such as one whose id a live
        executor holds (:class:`ExecutorIdInUse`)."""
        if self._owns_redis:
            self.redis.close()
        if self._owns_broker:
            self.broker.close()
        self.clusters.close()
        if self._owns_engine:
            self.engine.dispose()
        if self.tracer is not None:
            self.tracer.close()

    # --- submit -----------------------------------------------------------------------------

    def execute_async(self, key: Any, command: Sequence[str], queue: str | None = None,
                      executor_config: Any = None, priority: int = 0) -> None:
        """Airflow's signature: run ``command`` for task try ``key`` as a pod (``priority``:
        the task's ``priority_weight``, which Airflow's ``queue_command`` carries)."""
        self.submit(key, command, queue=queue, executor_config=executor_config,
                    priority=priority)

    def submit(self, key: Any, command: Sequence[str], queue: str | None = None,
               executor_config: Any = None, deadline: float | None = None,
               priority: int = 0) -> str:
        """Submit one task try; returns its launch id. See :meth:`submit_many`."""
        return self.submit_many([TaskSubmission(key, command, queue, executor_config,
                                                deadline, priority)])[0]

    def submit_many(self, submissions: Iterable[TaskSubmission]) -> list[str]:
        """Validate, write QUEUED rows in one transaction, then send launch messages.

        Raises :class:`~podfleet.executor.submission.InvalidSubmission` (writing nothing) when
        any task is invalid or already queued/running. Launch messages carry
        ``settings.launch.batch_size`` tasks each and go to Redis in one round trip per task
        queue, for the tasks that fit in the open slots (highest ``priority`` first); the rest
        wait for ``sync``. If Redis cannot be reached the rows stay QUEUED and are sent by a
        later ``sync`` or by reconciliation. Returns the launch ids, in order.
        """
        self._registration.check_not_fenced()
        tasks = validate_submissions(
            submissions, default_namespace=self.settings.kubernetes.namespace,
            watched_namespaces=self.settings.kubernetes.watch_namespaces, pods=self._pod_factory,
            now=self._deadline_clock.now(), clusters=self.settings.clusters,
            own_clusters=self.settings.executor.clusters)
        self._register()
        now = self._clock()
        rows = [NewTaskRow.queued(task, now, self.executor_id) for task in tasks]
        insert_rows(self._sessions, rows, copy_supported=self._copy_supported)
        TASKS_SUBMITTED.labels(**self._labels).inc(len(rows))
        counts = self.slot_counts() if self.parallelism else None
        if counts is not None and counts.waiting > len(rows):
            # older tasks wait already: keep first-come order
            self._launches.launch_waiting(counts)
        else:
            room = len(rows) if counts is None else max(
                0, self.parallelism - counts.occupied)
            # Slots for some only: the highest priorities take them (stable: then oldest).
            chosen = rows if room >= len(rows) else sorted(
                rows, key=lambda row: -row.priority)[:room]
            self._launches.send([self._launches.request_for(row) for row in chosen])
        return [row.launch_id for row in rows]

    # --- views (derived from the DB) --------------------------------------------------------

    def slot_counts(self) -> SlotCounts:
        """This executor's active tasks by kind, in one indexed query."""
        return count_slots(self._sessions, self.executor_id)

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
        return running_keys(self._sessions, self.executor_id)

    @property
    def queued_tasks(self) -> dict[TaskKey, QueuedTask]:
        """Tasks accepted but not yet sent, waiting for a slot (Airflow's ``queued_tasks``)."""
        return queued_tasks(self._sessions, self.executor_id)

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

        A Redis or Kubernetes API outage never escapes (a scheduler loop must survive it): it
        is logged, at most once a minute, and the next sync catches up. Events are acked only
        after their DB commit, so an outage between the two replays them, changing nothing.
        """
        self._registration.check_not_fenced()
        self.sync_interrupted = False
        try:
            return self._sync_once()
        except (redis.RedisError, KubeError, Unreachable) as exc:
            self.sync_interrupted = True
            now = time.monotonic()
            if now >= self._next_outage_log:
                self._next_outage_log = now + 60.0
                log.warning("executor %s: sync interrupted (%s: %s); it catches up once "
                            "the service is back", self.executor_id, type(exc).__name__, exc)
            return 0

    def _sync_once(self) -> int:
        self._register()
        now = self._clock()
        if now >= self._registration.next_heartbeat:
            self._registration.beat(now)
            self._streams.load_adopted()
        applied = self._drain_streams()
        if now >= self._next_housekeeping:
            self._next_housekeeping = now + self.settings.executor.heartbeat_seconds
            stuck = expire_stuck_queued(self._sessions, self.settings, self.executor_id, now)
            if stuck is not None:
                self._after_commit(stuck)
            pending = expire_stuck_pending(self._sessions, self.settings, self.executor_id,
                                           now, self._pods)
            if pending is not None:
                self._after_commit(pending)
            if self._started:
                self.adopt_dead_executors()
        # One count serves both the launch decision and the gauges (each query scans every
        # active task's index entry, and sync runs back to back in a busy scheduler loop).
        counts = self.slot_counts()
        sent = self._launches.launch_waiting(counts)
        counts.waiting -= sent
        counts.sent += sent
        if now >= self._next_watcher_check:
            self._next_watcher_check = now + self.settings.watcher.lease_seconds
            ensure_watcher(self.redis, self.broker, self.keys, self.settings,
                           self.executor_id)
            self._unconsumed.check()
        export_gauges(counts, self.parallelism, self._labels)
        if self._started:
            self.resync.step()  # at most one page of pods per sync: the work is spread out
        return applied

    def _drain_streams(self) -> int:
        """Read and apply stream entries until caught up, or until this sync's bounds (reads,
        time) are used up: what was applied meanwhile should reach the buffer promptly."""
        applied = 0
        redis_lost = False
        give_up_at = time.monotonic() + MAX_DRAIN_SECONDS
        for _ in range(MAX_STREAM_READS_PER_SYNC):
            try:
                entries, lost = self._streams.read()
            except redis.RedisError as exc:
                self.sync_interrupted = True
                now = time.monotonic()
                if now >= self._next_outage_log:
                    self._next_outage_log = now + 60.0
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
                self._streams.read_pending_again()
                raise
            if len(entries) < STREAM_READ_COUNT and not self._streams.any_pending:
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

    def _apply_entries(self, entries: list[Entry]) -> int:
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
            self._streams.read_pending_again(
                {entry[0].key: entry[0] for entry in entries}.values())
            return 0
        # Acknowledge only after the commit: a crash before this line replays the entries,
        # which the state machine ignores.
        self._streams.acknowledge(entries)
        self._after_commit(result)
        return result.applied

    def _apply_events(self, events: list[TaskEvent], now: float) -> Applied | None:
        """Apply ``events`` to their rows in one transaction; see
        :meth:`~podfleet.executor.batch.EventBatches.apply`."""
        return self._batches.apply(events, now)

    def _after_commit(self, result: Applied) -> None:
        finished: list[TaskKey] = []
        for key, change in result.buffer.items():
            state = change[0]
            if state.is_terminal:
                # A terminal state reaches this scheduler once: replays of it (a watcher that
                # relisted after Redis lost its records) are re-reported only to a new
                # executor, which may have missed the first report.
                if self._terminal_reported.get(key) is state:
                    continue
                self._terminal_reported[key] = state
                if len(self._terminal_reported) > TERMINAL_REPORTS_KEPT:
                    self._terminal_reported.popitem(last=False)
                finished.append(key)
            self.event_buffer[key] = change
        if finished and self.tracer is not None:
            self._trace(finished)
        for outcome, number in result.outcomes.items():
            EVENTS_APPLIED.labels(result=outcome).inc(number)
        for reason, number in result.disruptions.items():
            POD_DISRUPTIONS.labels(reason=reason).inc(number)
        for cause, number in result.relaunches.items():
            TASK_RELAUNCHES.labels(cause=cause).inc(number)
        now = time.time()
        for state, submitted_at, finished_at in result.finished:
            TASK_END_TO_END.labels(state=state.value).observe(max(0.0, finished_at - submitted_at))
            TASK_REPORT_LATENCY.observe(max(0.0, now - finished_at))
        if result.pods_to_delete:
            self._pods.delete_pods(result.pods_to_delete)
        if result.stale_pods:
            self._pods.delete_pods(result.stale_pods, once=True)

    def _trace(self, keys: list[TaskKey]) -> None:
        """Emit the finished tries' spans; tracing never fails a sync."""
        assert self.tracer is not None
        columns = (TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.run_id,
                   TaskInstance.map_index, TaskInstance.try_number)
        wanted = [(k.dag_id, k.task_id, k.run_id, k.map_index, k.try_number) for k in keys]
        try:
            with self._sessions() as session:
                rows = list(session.scalars(sa.select(TaskInstance).where(
                    sa.tuple_(*columns).in_(wanted))))
            self.tracer.record(rows)
        except Exception as exc:
            log.warning("executor %s: cannot trace %d finished task(s): %s",
                        self.executor_id, len(keys), exc)

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
            # Not placed yet (cluster None): its pod may appear in any cluster.
            target = PodRef(placed_cluster(row),
                            row.pod_namespace or task_namespace(
                                row.executor_config or {}, self.settings.kubernetes.namespace),
                            row.pod_name or pod_name(task_key, row.launch_id), row.pod_uid)
            row.state = TaskState.REVOKED.value
            row.finished_at = now
            row.updated_at = now
            row.reason = "revoked"
            result = Applied()
            record_change(result, row, self.executor_id)
        self._after_commit(result)
        self._pods.delete_pods([target])
        return True

    # --- logs -------------------------------------------------------------------------------

    def task_log(self, key: Any, *, tail: int | None = None) -> TaskLog:
        """Task try ``key``'s log so far (its last ``tail`` lines): read from its pod while
        the pod exists, from the log archive once it is deleted. Raises
        :class:`~podfleet.executor.logs.TaskLogUnavailable` when there is none."""
        return self._task_logs().read_key(TaskKey.coerce(key), tail=tail)

    def follow_task_log(self, key: Any, *, tail: int | None = None) -> Iterator[str]:
        """Task try ``key``'s log as it is written, until its container exits; see
        :meth:`~podfleet.executor.logs.TaskLogs.follow`. Blocks: use it off the scheduler
        loop's thread."""
        logs = self._task_logs()
        return logs.follow(logs.target(TaskKey.coerce(key)), tail=tail)

    def _task_logs(self) -> TaskLogs:
        return TaskLogs.for_settings(self.settings, self._sessions, self.clusters.client)

    # --- recovery ---------------------------------------------------------------------------

    def reconcile(self, *, redis_lost: bool = False) -> None:
        """Bring this executor's active tasks in line with the cluster; see
        :meth:`~podfleet.executor.reconcile.Reconciler.reconcile`."""
        self._reconciler.reconcile(redis_lost=redis_lost)

    def adopt_dead_executors(self, declared_dead: Iterable[str] = ()) -> list[str]:
        """Take over the tasks, event streams and pods of executors that are gone (or, in
        ``declared_dead``, known by the caller to have died); returns the adopted ids. See
        :meth:`~podfleet.executor.reconcile.Reconciler.adopt_dead_executors`.
        """
        return self._reconciler.adopt_dead_executors(declared_dead)

    def active_tries(self, keys: Iterable[Any]) -> dict[TaskKey, ActiveTry]:
        """The unfinished tries among ``keys``, whichever executor owns them, with their
        launch id and pod name (one query per 500 keys)."""
        return active_tries(self._sessions, [TaskKey.coerce(key) for key in keys])

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def kube(self) -> KubeClient:
        """The default cluster's API client (the first configured cluster's when none is
        named ``default``)."""
        names = self.clusters.names
        return self.clusters.client(DEFAULT_CLUSTER if DEFAULT_CLUSTER in names else names[0])

    def _make_kube(self, spec: ClusterSpec, observe: RequestObserver | None) -> KubeClient:
        client = KubeClient.from_cluster(spec, timeout_seconds=self.clusters.timeout_seconds,
                                         observe=observe)
        self._built_kube.append(client)
        if self._ending:
            fail_fast_kube(client)
        return client

    def _given_kube(self, kube: KubeClient) -> ClientFactory:
        def factory(spec: ClusterSpec, observe: RequestObserver | None) -> KubeClient:
            if spec.name == DEFAULT_CLUSTER:
                self._built_kube.append(kube)
                return kube
            return self._make_kube(spec, observe)
        return factory

    def _register(self) -> None:
        if self._registration.registered:
            return
        self._registration.register()
        if self.keys.events(self.executor_id) not in self._streams:
            self._streams.add(self.executor_id, adopted_at=None)
            self._streams.ensure_group(self.keys.events(self.executor_id))
