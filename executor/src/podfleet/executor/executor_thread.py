"""The one background thread that drives an :class:`~podfleet.executor.Executor` for a caller
whose own thread must not wait on podfleet's DB, Redis or the Kubernetes API (Airflow's
scheduler loop).

The caller's thread hands work over (:meth:`ExecutorThread.submit`, :meth:`~ExecutorThread.
revoke`: a bounded FIFO queue, so a revoke follows the submit it revokes; a burst of any size
is one :class:`DeferredBatch`, listed here) and takes what is ready (:meth:`~ExecutorThread.
take`: state changes and refused submissions). Everything else runs here: building and
writing submits and their launch messages, reading the event streams and applying them, the
caller's own look-up for those events (``on_events``), housekeeping, resync and reconciliation
(:meth:`Executor.sync`).

The thread syncs every :data:`SYNC_INTERVAL_SECONDS`, and at once when an entry arrives on the
executor's own event stream (:class:`~podfleet.executor.stream_wakeup.StreamWakeup` blocks on
it), at most once per :data:`MIN_SYNC_GAP_SECONDS`: a pod's end reaches the caller when it
comes, not at the next tick, and a stream of events costs a sync per batch, not per event.

Errors are logged and retried, never dropped: a submit the DB refused is tried again every
:data:`RETRY_SECONDS`; a sync that failed runs again at the next interval. A fenced executor
(:class:`~podfleet.executor.registry.ExecutorFenced`) stops the thread, and the caller's next
:meth:`~ExecutorThread.take` raises it: a newer executor owns the tasks.

Python runs one thread at a time (the GIL): CPU work here during the caller's call would
stretch that call by a switch interval (5 ms) each time the caller waits for its turn. The
caller marks its call with :meth:`ExecutorThread.caller_turn` (Airflow's ``heartbeat()``), and
the thread holds its work back at its pause points (:meth:`~ExecutorThread.pause_for_caller`:
between hand-offs, syncs, and every few hundred builds of a burst) until the call returns,
:data:`CALLER_TURN_MAX_SECONDS` at most at each.

A workload handed over but not yet written exists only in this process: if the process dies
then, no row, pod or message exists for it, so nothing is adopted and the caller's own
recovery (Airflow resets task instances no executor adopted) sends it again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor.batch import EventInfo
from podfleet.executor.executor import Executor
from podfleet.executor.registry import ExecutorFenced
from podfleet.executor.slots import SlotCounts
from podfleet.executor.stream_wakeup import StreamWakeup
from podfleet.executor.submission import InvalidSubmission, TaskSubmission

log = logging.getLogger("podfleet.executor")

#: Seconds between timed syncs (housekeeping, adopted streams, slots; events wake it sooner).
SYNC_INTERVAL_SECONDS = 0.2
#: Seconds at least between two syncs an event stream entry brought on.
MIN_SYNC_GAP_SECONDS = 0.01
#: Seconds before a submit the DB refused (an outage) is tried again.
RETRY_SECONDS = 1.0
#: Hand-offs (one per caller batch) waiting at most; a full queue makes the caller wait.
HAND_OFF_LIMIT = 1000
#: Longest the thread holds its work back at one pause point for the caller's turn: a caller
#: that stays in its turn must not stall podfleet.
CALLER_TURN_MAX_SECONDS = 0.5
#: Deferred submissions built between two pause points.
BUILDS_PER_PAUSE = 256


@dataclass(frozen=True, slots=True)
class Refusal:
    """A handed-over submission podfleet refused (invalid), with the reason."""

    key: TaskKey
    reason: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """A submission the thread builds itself (building costs CPU the caller's thread must not
    spend); a build that raises is refused with the exception's message."""

    key: TaskKey
    build: Callable[[], TaskSubmission]


Handed = TaskSubmission | Deferred


@dataclass(frozen=True, slots=True)
class DeferredBatch:
    """``count`` submissions the thread lists itself: ``build`` returns them (as submissions
    or :class:`Deferred`), so the caller's thread hands a whole burst over in O(1). It may
    return fewer than ``count`` (those the caller took back meanwhile); it must not raise."""

    count: int
    build: Callable[[], list[Handed]]


#: What the thread has read for the caller: each task's newest state and its reason.
Events = dict[TaskKey, tuple[TaskState, EventInfo]]


@dataclass(slots=True)
class Ready:
    """What the thread has for the caller since the last :meth:`ExecutorThread.take`."""

    events: Events = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Revoke:
    key: TaskKey


class _Wake:
    """An entry arrived on the event stream: sync now."""


_WAKE = _Wake()

HandOff = list[Handed] | DeferredBatch


class ExecutorThread:
    """Owns ``fleet`` from :meth:`start` to :meth:`stop`: only this thread calls it, except
    inside :meth:`using_fleet`.

    ``on_events``, when given, runs on the thread with every batch of events before the
    caller can :meth:`take` them: the caller's own lookups for them (Airflow's task instance
    states) are done by the time it sees them. An error there is logged; the events are
    handed over all the same."""

    def __init__(self, fleet: Executor, *, sync_interval: float = SYNC_INTERVAL_SECONDS,
                 hand_off_limit: int = HAND_OFF_LIMIT,
                 on_events: Callable[[Events], None] | None = None) -> None:
        self.fleet = fleet
        self.sync_interval = sync_interval
        self.on_events = on_events
        self._hand_offs: queue.Queue[HandOff | _Revoke | _Wake] = queue.Queue(
            maxsize=hand_off_limit)
        self._fleet_lock = threading.RLock()
        self._ready_lock = threading.Lock()
        self._ready = Ready()
        self._retrying: list[TaskSubmission] = []
        self._retry_at = 0.0
        # Submissions handed over and not yet written or refused (guarded by _fleet_lock
        # while they are written, so a count never sees a task twice).
        self._in_flight = 0
        self._stopping = threading.Event()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._wakeup = StreamWakeup(fleet.redis, fleet.keys.events(fleet.executor_id),
                                    self._wake)
        # Clear while the caller is in its turn (see caller_turn).
        self._caller_idle = threading.Event()
        self._caller_idle.set()

    # --- the caller's side ------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (the fleet is started already)."""
        self._thread = threading.Thread(target=self._run, name="podfleet-executor",
                                        daemon=True)
        self._thread.start()
        self._wakeup.start()

    def submit(self, submissions: HandOff) -> None:
        """Hand ``submissions`` over; they are built (if deferred), written and launched on
        the thread."""
        count = submissions.count if isinstance(submissions, DeferredBatch) \
            else len(submissions)
        if not count:
            return
        with self._ready_lock:
            self._in_flight += count
        self._hand_offs.put(submissions)

    def revoke(self, key: TaskKey) -> None:
        """Hand a revoke over (after any submit handed over before it)."""
        self._hand_offs.put(_Revoke(key))

    def take(self) -> Ready:
        """Pop what is ready. Raises :class:`ExecutorFenced` once a newer executor fenced
        this one (the thread has stopped applying)."""
        if self._failure is not None:
            raise self._failure
        with self._ready_lock:
            ready, self._ready = self._ready, Ready()
        return ready

    @property
    def in_flight(self) -> int:
        """Submissions handed over and not yet written (nor refused)."""
        with self._ready_lock:
            return self._in_flight

    def slot_counts(self) -> SlotCounts:
        """The fleet's counts with what is in flight as waiting; each task counted once."""
        with self._fleet_lock:
            counts = self.fleet.slot_counts()
            counts.waiting += self.in_flight
            return counts

    @contextmanager
    def caller_turn(self) -> Iterator[None]:
        """Mark a call of the caller's own thread whose time matters (Airflow's scheduler
        loop in ``heartbeat()``): meanwhile the thread holds its CPU work back at its next
        pause point, so the two do not take turns on the GIL inside the call."""
        self._caller_idle.clear()
        try:
            yield
        finally:
            self._caller_idle.set()

    def pause_for_caller(self) -> None:
        """A pause point of the thread's own work (a caller's ``build`` may call it too):
        wait while the caller is in its turn, :data:`CALLER_TURN_MAX_SECONDS` at most."""
        if not self._caller_idle.is_set():
            self._caller_idle.wait(CALLER_TURN_MAX_SECONDS)

    @contextmanager
    def using_fleet(self) -> Iterator[Executor]:
        """The fleet, for a call the caller must make itself (adoption): the thread waits."""
        with self._fleet_lock:
            yield self.fleet

    def stop(self, timeout: float) -> None:
        """Write what was handed over (within ``timeout`` seconds), then stop the thread.

        What is still unwritten then is logged; it was never written, so the caller's
        recovery sends it again."""
        self._stopping.set()
        self._wakeup.stop(0.0)
        self._wake()  # a thread waiting out a long timed sync sees the stop at once
        if self._thread is not None:
            self._thread.join(max(0.0, timeout))
        if self.in_flight:
            log.warning("executor %s: %d handed-over task(s) not written on stopping",
                            self.fleet.executor_id, self.in_flight)

    # --- the thread -------------------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._hand_offs.put_nowait(_WAKE)
        except queue.Full:
            self._wakeup.synced()  # the caller's hand-offs are due first; the tick follows

    def _run(self) -> None:
        next_sync = 0.0
        last_sync = 0.0
        while True:
            wait = max(0.0, next_sync - time.monotonic())
            work = self._next_work(0.0 if self._stopping.is_set() else wait)
            try:
                if any(item is _WAKE for item in work):
                    work = [item for item in work if item is not _WAKE]
                    next_sync = min(next_sync, last_sync + MIN_SYNC_GAP_SECONDS)
                if work:
                    self.pause_for_caller()
                    self._do(work)
                if self._retrying and time.monotonic() >= self._retry_at:
                    retry, self._retrying = self._retrying, []
                    self._write(retry)
                if self._stopping.is_set() and not work:
                    return
                if time.monotonic() >= next_sync:
                    self.pause_for_caller()
                    last_sync = time.monotonic()
                    next_sync = last_sync + self.sync_interval
                    self._sync()
            except ExecutorFenced as exc:
                log.error("executor %s: %s; it stops applying", self.fleet.executor_id, exc)
                self._failure = exc
                return
            except Exception:
                log.exception("executor %s: background step failed; it runs again",
                              self.fleet.executor_id)
                time.sleep(self.sync_interval)

    def _next_work(self, wait: float) -> list[HandOff | _Revoke | _Wake]:
        """Every hand-off waiting now (waiting up to ``wait`` seconds for the first)."""
        try:
            first = self._hand_offs.get(timeout=wait) if wait > 0 else \
                self._hand_offs.get_nowait()
        except queue.Empty:
            return []
        work = [first]
        while True:
            try:
                work.append(self._hand_offs.get_nowait())
            except queue.Empty:
                return work

    def _do(self, work: list[HandOff | _Revoke | _Wake]) -> None:
        batch: list[TaskSubmission] = []
        for item in work:
            if isinstance(item, _Wake):
                continue
            if isinstance(item, _Revoke):
                self._write(batch)
                batch = []
                self._revoke(item.key)
            else:
                batch.extend(self._built(item))
        self.pause_for_caller()
        self._write(batch)

    def _built(self, handed: HandOff) -> list[TaskSubmission]:
        if isinstance(handed, DeferredBatch):
            listed = handed.build()
            if len(listed) < handed.count:  # taken back by the caller before listing
                with self._ready_lock:
                    self._in_flight -= handed.count - len(listed)
            handed = listed
        built: list[TaskSubmission] = []
        refusals: list[Refusal] = []
        for n, item in enumerate(handed):
            if isinstance(item, TaskSubmission):
                built.append(item)
                continue
            if n and n % BUILDS_PER_PAUSE == 0:
                self.pause_for_caller()
            try:
                built.append(item.build())
            except Exception as exc:
                refusals.append(Refusal(item.key, str(exc)))
        if refusals:
            with self._ready_lock:
                self._in_flight -= len(refusals)
                self._ready.refusals.extend(refusals)
        return built

    def _write(self, submissions: list[TaskSubmission]) -> None:
        """Write ``submissions`` in one batch; refuse invalid ones one by one; keep the
        batch for a retry when the DB or Redis refused it."""
        if not submissions:
            return
        with self._fleet_lock:
            try:
                self.fleet.submit_many(submissions)
            except InvalidSubmission:
                refusals = [r for r in map(self._write_one, submissions) if r is not None]
                with self._ready_lock:
                    self._ready.refusals.extend(refusals)
            except ExecutorFenced:
                raise
            except Exception as exc:
                log.warning("executor %s: cannot submit %d task(s), retrying in %.0fs: %s",
                            self.fleet.executor_id, len(submissions), RETRY_SECONDS, exc)
                self._retrying.extend(submissions)  # still in flight
                self._retry_at = time.monotonic() + RETRY_SECONDS
                return
            with self._ready_lock:
                self._in_flight -= len(submissions)

    def _write_one(self, submission: TaskSubmission) -> Refusal | None:
        key = TaskKey.coerce(submission.key)
        try:
            self.fleet.submit_many([submission])
        except InvalidSubmission as exc:
            if self.fleet.active_tries([key]).get(key) is not None:
                return None  # already queued or running here (a resent workload)
            return Refusal(key, str(exc))
        return None

    def _revoke(self, key: TaskKey) -> None:
        with self._fleet_lock:
            try:
                self.fleet.revoke(key)
            except ExecutorFenced:
                raise
            except Exception as exc:
                log.warning("executor %s: revoking %s: %s", self.fleet.executor_id, key, exc)
            self._collect()

    def _sync(self) -> None:
        with self._fleet_lock:
            try:
                self.fleet.sync()
            finally:
                self._wakeup.synced()
                self._collect()

    def _collect(self) -> None:
        events = self.fleet.get_event_buffer()
        if events and self.on_events is not None:
            try:
                self.on_events(events)
            except Exception:
                log.exception("executor %s: reading %d event(s)' details failed; they are "
                              "handed over without", self.fleet.executor_id, len(events))
        if events:
            with self._ready_lock:
                self._ready.events.update(events)
