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
from typing import Any

import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.orm import Session, sessionmaker

from podfleet.broker import enqueue_envelopes
from podfleet.contracts.messages import LaunchBatch, LaunchRequest
from podfleet.contracts.queues import route_for
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.executor.db import TaskInstance
from podfleet.executor.registry import Registration
from podfleet.executor.rows import IN_CHUNK, TASKS, chunks, row_key
from podfleet.executor.slots import SlotCounts, count_slots
from podfleet.pods import task_namespace
from podfleet.settings import Settings

log = logging.getLogger("podfleet.executor")

MAX_LAUNCHES_PER_SYNC = 10_000
_REQUEST_COLUMNS = ("dag_id", "task_id", "run_id", "map_index", "try_number", "launch_id",
                    "command", "queued_at", "queue", "executor_config", "deadline",
                    "priority")


class LaunchSender:
    """Turns QUEUED rows into signed launch batches in the broker, then marks them sent."""

    def __init__(self, settings: Settings, registration: Registration,
                 sessions: sessionmaker[Session], broker: RedisBroker, signer: MessageSigner,
                 clock: Callable[[], float]) -> None:
        self.settings = settings
        self.executor_id = registration.executor_id
        self.parallelism = settings.executor.parallelism
        self._registration = registration
        self._sessions = sessions
        self._broker = broker
        self._signer = signer
        self._clock = clock

    def request_from_row(self, row: dict[str, Any]) -> LaunchRequest:
        return LaunchRequest(
            key=row_key(row), launch_id=row["launch_id"], command=tuple(row["command"]),
            executor_id=self.executor_id,
            namespace=task_namespace(row["executor_config"] or {},
                                     self.settings.kubernetes.namespace),
            queued_at=row["queued_at"], queue=row["queue"],
            executor_config=row["executor_config"] or {},
            deadline=row["deadline"] or self.default_deadline(),
            priority=row.get("priority") or 0)

    def default_deadline(self) -> float | None:
        """Every launch gets a deadline, so a message redelivered or replayed long after can
        create nothing: just after the stuck-QUEUED timeout would relaunch the task anyway
        (under a new launch id), with room for the housekeeping tick that does it."""
        timeout = self.settings.executor.queued_timeout_seconds
        if timeout <= 0:
            return None
        return self._clock() + timeout + 2 * self.settings.executor.heartbeat_seconds + 5.0

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
                log.warning("could not enqueue %d launch(es), they stay queued and are "
                            "resent: %s", len(requests) - len(sent), exc)
                break
            sent.extend(queued)
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
        requests = [self.request_from_row({c: getattr(row, c) for c in _REQUEST_COLUMNS})
                    for row in rows]
        return len(requests) if self.send(requests) else 0
