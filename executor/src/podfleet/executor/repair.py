"""What the executor's two repairers work with.

The :class:`~podfleet.executor.reconcile.Reconciler` (at start, after Redis was lost, when it
adopts a dead executor) and the :class:`~podfleet.executor.resync.Resync` (a sweep of its pods,
a page per sync) both change task rows from what the cluster says, through the same pieces of
the executor: one :class:`RepairContext` hands them over once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from podfleet.executor.batch import Applied
from podfleet.executor.pods import ExecutorPods
from podfleet.settings import Settings


@dataclass(frozen=True, slots=True)
class RepairContext:
    """The executor's settings, database sessions, pod operations (in every cluster), clock,
    and ``after_commit``, which acts on what a transaction changed (event
    buffer, metrics, pod deletes)."""

    settings: Settings
    sessions: sessionmaker[Session]
    pods: ExecutorPods
    clock: Callable[[], float]
    after_commit: Callable[[Applied], None]

    @property
    def executor_id(self) -> str:
        return self.settings.executor.executor_id
