"""The scheduler-facing executor: submit tasks as pods, sync their states from the event stream.

``Executor`` lives in :mod:`podfleet.executor.executor`; the metadata DB models in
:mod:`podfleet.executor.db` and their migrations in :mod:`podfleet.executor.migrate`.
"""

from __future__ import annotations

from podfleet.executor.executor import (
    Executor,
    ExecutorFenced,
    ExecutorIdInUse,
    QueuedTask,
    SlotCounts,
)
from podfleet.executor.slots import ActiveTry
from podfleet.executor.submission import DuplicateSubmission, InvalidSubmission, TaskSubmission

__all__ = [
    "ActiveTry",
    "DuplicateSubmission",
    "Executor",
    "ExecutorFenced",
    "ExecutorIdInUse",
    "InvalidSubmission",
    "QueuedTask",
    "SlotCounts",
    "TaskSubmission",
]
