"""Slot counting and the Airflow-style views of an executor's active tasks.

Nothing here is kept by hand: every count and view is derived from the metadata DB on demand
(Airflow #35675 leaked slots by counting in memory), in one indexed query per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import pod_name
from podfleet.contracts.states import TaskState
from podfleet.executor.db import ACTIVE_STATES, TaskInstance
from podfleet.monitoring.metrics import (
    EXECUTOR_OPEN_SLOTS,
    EXECUTOR_QUEUED_TASKS,
    EXECUTOR_RUNNING_TASKS,
)


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """A task accepted by submit and not yet sent to the launcher pool (waiting for a slot)."""

    launch_id: str
    command: tuple[str, ...]
    queue: str | None
    queued_at: float
    priority: int = 0


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


def count_slots(sessions: sessionmaker[Session], executor_id: str) -> SlotCounts:
    """The executor's active tasks by kind, in one indexed query."""
    counts = SlotCounts()
    with sessions() as session:
        result = session.execute(
            sa.select(TaskInstance.state, TaskInstance.enqueued_at.is_(None),
                      sa.func.count())
            .where(TaskInstance.executor_id == executor_id,
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


def running_keys(sessions: sessionmaker[Session], executor_id: str) -> set[TaskKey]:
    """Tasks sent to the launcher pool and not finished (Airflow's ``running``)."""
    with sessions() as session:
        rows = session.execute(_key_query(executor_id).where(
            sa.or_(TaskInstance.state != TaskState.QUEUED.value,
                   TaskInstance.enqueued_at.is_not(None))))
        return {TaskKey(*row[:5]) for row in rows}


def queued_tasks(sessions: sessionmaker[Session],
                 executor_id: str) -> dict[TaskKey, QueuedTask]:
    """Tasks accepted but not yet sent, waiting for a slot (Airflow's ``queued_tasks``)."""
    with sessions() as session:
        rows = session.execute(_key_query(
            executor_id, TaskInstance.launch_id, TaskInstance.command, TaskInstance.queue,
            TaskInstance.queued_at, TaskInstance.priority).where(
                TaskInstance.state == TaskState.QUEUED.value,
                TaskInstance.enqueued_at.is_(None)))
        return {TaskKey(*row[:5]): QueuedTask(row[5], tuple(row[6]), row[7], row[8],
                                              row[9])
                for row in rows}


def _key_query(executor_id: str, *extra: Any) -> sa.Select[Any]:
    return sa.select(TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.run_id,
                     TaskInstance.map_index, TaskInstance.try_number, *extra).where(
        TaskInstance.executor_id == executor_id,
        TaskInstance.state.in_(ACTIVE_STATES))


def export_gauges(counts: SlotCounts, parallelism: int, labels: dict[str, str]) -> None:
    """Publish the counts as the executor's queued/running/open-slot gauges."""
    EXECUTOR_QUEUED_TASKS.labels(**labels).set(counts.waiting + counts.sent)
    EXECUTOR_RUNNING_TASKS.labels(**labels).set(counts.launched + counts.running)
    EXECUTOR_OPEN_SLOTS.labels(**labels).set(
        max(0, parallelism - counts.occupied) if parallelism else -1)


@dataclass(frozen=True, slots=True)
class ActiveTry:
    """An unfinished task try as the DB knows it, whichever executor owns it."""

    key: TaskKey
    launch_id: str
    state: TaskState
    executor_id: str
    pod_name: str


def active_tries(sessions: sessionmaker[Session],
                 keys: list[TaskKey]) -> dict[TaskKey, ActiveTry]:
    """The unfinished tries among ``keys``, of any executor (what adoption looks for)."""
    found: dict[TaskKey, ActiveTry] = {}
    with sessions() as session:
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            rows = session.execute(
                sa.select(TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.run_id,
                          TaskInstance.map_index, TaskInstance.try_number,
                          TaskInstance.launch_id, TaskInstance.state, TaskInstance.executor_id,
                          TaskInstance.pod_name)
                .where(TaskInstance.state.in_(ACTIVE_STATES),
                       sa.tuple_(TaskInstance.dag_id, TaskInstance.task_id,
                                 TaskInstance.run_id, TaskInstance.map_index,
                                 TaskInstance.try_number).in_(
                           [(k.dag_id, k.task_id, k.run_id, k.map_index, k.try_number)
                            for k in chunk])))
            for row in rows:
                key = TaskKey(*row[:5])
                found[key] = ActiveTry(key, row[5], TaskState(row[6]), row[7],
                                       row[8] or pod_name(key, row[5]))
    return found
