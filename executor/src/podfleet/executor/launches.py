"""Sending launch messages for QUEUED tasks, within the open slots.

A task is written QUEUED before any message about it exists, and ``enqueued_at`` is set only
after its message is in the broker: a crash in between resends it under the same launch id,
so the same pod name, and the API answers 409 instead of creating a second pod. Tasks beyond
``parallelism`` wait (``enqueued_at`` NULL) and are sent as slots open: highest ``priority``
first, oldest first among equals. Each task goes to the dramatiq queue of its task queue
(:mod:`podfleet.contracts.queues`); a message holds tasks of one queue only, highest first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.orm import Session, sessionmaker

from podfleet.broker import enqueue_envelopes
from podfleet.contracts.clusters import PlacementError
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchBatch, LaunchRequest
from podfleet.contracts.queues import route_for
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.executor.db import TaskInstance
from podfleet.executor.registry import Registration
from podfleet.executor.rows import IN_CHUNK, TASKS, chunks
from podfleet.executor.slots import SlotCounts, count_slots
from podfleet.executor.submission import task_clusters
from podfleet.pods import task_namespace
from podfleet.settings import Settings

log = logging.getLogger("podfleet.executor")

MAX_LAUNCHES_PER_SYNC = 10_000


class LaunchableTask(Protocol):
    """What a launch request is made of: a row just submitted (:class:`NewTaskRow`) or one
    read back waiting (a :class:`TaskInstance`)."""

    @property
    def key(self) -> TaskKey: ...
    @property
    def launch_id(self) -> str: ...
    @property
    def command(self) -> list[str]: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def queued_at(self) -> float: ...
    @property
    def executor_config(self) -> dict[str, Any]: ...
    @property
    def deadline(self) -> float | None: ...
    @property
    def priority(self) -> int: ...


class LaunchSender:
    """Turns QUEUED rows into signed launch batches in the broker, then marks them sent."""

    def __init__(self, settings: Settings, registration: Registration,
                 sessions: sessionmaker[Session], broker: RedisBroker, signer: MessageSigner,
                 clock: Callable[[], float],
                 deadline_clock: Callable[[], float] | None = None) -> None:
        self.settings = settings
        self.executor_id = registration.executor_id
        self.parallelism = settings.executor.parallelism
        self._registration = registration
        self._sessions = sessions
        self._broker = broker
        self._signer = signer
        self._clock = clock
        # The clock deadlines are judged on (Redis' TIME, as the launcher judges them).
        self._deadline_clock = deadline_clock or clock
        # While enqueueing fails, the warning is logged once, and once more when it clears.
        self._enqueue_failing = False

    def request_for(self, task: LaunchableTask) -> LaunchRequest:
        """The launch request of a QUEUED task, owned by this executor, carrying the
        clusters it may be placed on; raises PlacementError when it may be placed nowhere
        (a cluster removed from the configuration since it was submitted)."""
        config = task.executor_config or {}
        namespace = task_namespace(config, self.settings.kubernetes.namespace)
        return LaunchRequest(
            key=task.key, launch_id=task.launch_id, command=tuple(task.command),
            executor_id=self.executor_id, namespace=namespace,
            queued_at=task.queued_at, queue=task.queue, executor_config=config,
            deadline=task.deadline or self.default_deadline(), priority=task.priority or 0,
            clusters=task_clusters(self.settings.clusters, config, task.queue, namespace,
                                   self.settings.executor.clusters))

    def default_deadline(self) -> float | None:
        """Every launch gets a deadline, so a message redelivered or replayed long after can
        create nothing: just after the stuck-QUEUED timeout would relaunch the task anyway
        (under a new launch id), with room for the housekeeping tick that does it."""
        timeout = self.settings.executor.queued_timeout_seconds
        if timeout <= 0:
            return None
        return (self._deadline_clock() + timeout
                + 2 * self.settings.executor.heartbeat_seconds + 5.0)

    def send(self, requests: list[LaunchRequest]) -> bool:
        """Enqueue ``requests`` as signed batches, one round trip per task queue among them
        (highest priority first, in each message too), then mark them sent."""
        if not requests:
            return True
        size = self.settings.launch.batch_size
        by_queue: dict[str, list[LaunchRequest]] = {}
        # sorted() is stable: among equal priorities the caller's (oldest-first) order holds.
        for request in sorted(requests, key=lambda r: -r.priority):
            by_queue.setdefault(route_for(self.settings, request.queue).broker_queue,
                                []).append(request)
        sent: list[LaunchRequest] = []
        for queue, queued in by_queue.items():
            envelopes = [LaunchBatch(tuple(batch)).seal(self._signer)
                         for batch in chunks(queued, size)]
            try:
                enqueue_envelopes(self._broker, queue, envelopes)
            except redis.RedisError as exc:
                if not self._enqueue_failing:
                    self._enqueue_failing = True
                    log.warning("could not enqueue %d launch(es), they stay queued and are "
                                "resent once Redis answers (logged once per outage): %s",
                                len(requests) - len(sent), exc)
                break
            sent.extend(queued)
        if self._enqueue_failing and len(sent) == len(requests):
            self._enqueue_failing = False
            log.info("enqueueing launches works again; waiting launches are being sent")
        self._mark_sent(sent)
        return len(sent) == len(requests)

    def _mark_sent(self, requests: list[LaunchRequest]) -> None:
        if not requests:
            return
        now = self._clock()
        with self._sessions.begin() as session:
            for chunk in chunks([r.launch_id for r in requests], IN_CHUNK):
                session.execute(
                    sa.update(TASKS)
                    .where(TASKS.c.launch_id.in_(chunk),
                           TASKS.c.state == TaskState.QUEUED.value)
                    .values(enqueued_at=now))

    def launch_waiting(self, counts: SlotCounts | None = None) -> int:
        """Send the waiting tasks that fit in the open slots, highest priority first, then
        oldest first; returns how many.

        ``counts``, when given, must be current (sync counts once for this and the gauges).
        """
        if self._registration.fenced:
            return 0
        limit = MAX_LAUNCHES_PER_SYNC
        if self.parallelism:
            counts = counts or count_slots(self._sessions, self.executor_id)
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
                .order_by(TaskInstance.priority.desc(), TaskInstance.queued_at,
                          TaskInstance.id).limit(limit)))
        requests: list[LaunchRequest] = []
        unplaceable: dict[str, str] = {}
        for row in rows:
            try:
                requests.append(self.request_for(row))
            except PlacementError as exc:
                unplaceable[row.launch_id] = f"cannot be placed: {exc}"
        if unplaceable:
            self._hold_unplaceable(unplaceable)
        return len(requests) if self.send(requests) else 0

    def _hold_unplaceable(self, reasons: dict[str, str]) -> None:
        """Tasks whose clusters are gone from the configuration are not sent: each is marked
        sent with its reason as what it waits on, so ``podfleet status`` shows it and the
        stuck-QUEUED timeout fails it with that reason, rather than it being dropped."""
        now = self._clock()
        with self._sessions.begin() as session:
            for launch_id, reason in reasons.items():
                log.error("task with launch %s %s", launch_id, reason)
                session.execute(
                    sa.update(TASKS)
                    .where(TASKS.c.launch_id == launch_id,
                           TASKS.c.state == TaskState.QUEUED.value)
                    .values(enqueued_at=now, waiting_reason=reason))
