"""The executor's state machine: how one task event changes one task row, at most once.

Events reach the executor at least once and in any order (a replayed stream after a crash, a
launcher's LAUNCHED racing the watcher's RUNNING, a late event about an older launch of the same
try). :func:`apply_event` therefore changes a row only when the event is about the row's
*current* launch and moves it forward (``contracts.states.may_transition``); anything else is
reported as ignored and changes nothing, which is what makes replays harmless.

A FAILED event whose failure is a disruption (the pod was preempted, evicted, drained, …:
:attr:`~podfleet.contracts.failure.Failure.disruption`) does not fail the try while its
disruption budget lasts: the try is relaunched under a new launch id (:func:`relaunch`), its
``disruptions`` counted, and the old launch's replayed events are stale from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

from podfleet.contracts.events import EventKind, TaskEvent
from podfleet.contracts.messages import new_launch_id
from podfleet.contracts.naming import pod_name
from podfleet.contracts.states import TaskState, may_transition

if TYPE_CHECKING:
    from podfleet.executor.db import TaskInstance, TaskRow

#: A task row as the rules below read and write it: the ORM's
#: :class:`~podfleet.executor.db.TaskInstance` or the plain
#: :class:`~podfleet.executor.db.TaskRow` (the sync hot path's Core rows), so the rules are
#: written once for both.
TaskRecord: TypeAlias = "TaskInstance | TaskRow"

# A try launched this many times without finishing (pods deleted while Pending, stuck-queued
# relaunches) fails instead of cycling forever (Airflow #36403). Relaunches after a
# disruption have their own budget and do not count against this one.
MAX_LAUNCHES_PER_TRY = 5
#: The columns one launch of a try fills in as it goes (sent, created, running, or parked on a
#: full quota); a new launch, and a new row, start without them.
LAUNCH_COLUMNS: tuple[str, ...] = (
    "enqueued_at", "launched_at", "running_at", "pod_name", "pod_uid", "waiting_reason",
    "cluster")  # a new launch is placed afresh, perhaps on another cluster


class Outcome(StrEnum):
    APPLIED = "applied"      # the row moved to the event's state
    REQUEUED = "requeued"    # the row got a new launch and waits to be sent again
    STALE = "stale"          # about another launch than the row's current one (or no row)
    FOREIGN = "foreign"      # about a pod that is not the launch's own (another name or uid)
    REPLAY = "replay"        # not forward (repeated or out of order): nothing to do
    TERMINAL = "terminal"    # the row had already finished


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: Outcome
    state: TaskState | None = None  # the row's new state when it changed


def apply_event(row: TaskRecord | None, event: TaskEvent, now: float, *,
                disruption_retries: int) -> Applied:
    """Apply ``event`` to ``row`` (the row whose current launch id is the event's, or None).

    ``disruption_retries`` is the ``PODFLEET_DISRUPTION_RETRIES`` budget: a disrupted FAILED
    event relaunches the try (outcome REQUEUED) while the row's ``disruptions`` are below it,
    and fails it with "(disrupted N times)" after.
    """
    if row is None or row.launch_id != event.launch_id:
        return Applied(Outcome.STALE)
    if is_foreign(row, event):
        return Applied(Outcome.FOREIGN)
    current = TaskState(row.state)
    if current.is_terminal:
        return Applied(Outcome.TERMINAL)
    if event.kind is EventKind.WAITING:
        return note_waiting(row, event, now)
    if event.kind is EventKind.REQUEUE:
        if current is TaskState.RUNNING:
            return Applied(Outcome.REPLAY)  # it ran: the watcher reports that as FAILED
        reason = f"pod {event.pod_name or ''} deleted before it ran".replace("  ", " ")
        state = relaunch(row, now, event.reason or reason)
        return Applied(Outcome.REQUEUED if state is TaskState.QUEUED else Outcome.APPLIED,
                       state)
    assert event.state is not None  # TaskEvent.from_fields guarantees it for STATE events
    new = event.state
    if not may_transition(current, new):
        return Applied(Outcome.REPLAY)
    disruption = event.failure.disruption if event.failure is not None else None
    if new is TaskState.FAILED and disruption and event.failure is not None:
        row.disruptions += 1
        if row.disruptions <= disruption_retries:
            relaunch(row, now, f"pod {event.pod_name or ''} disrupted: "
                               f"{event.failure.summary}".replace("  ", " "))
            return Applied(Outcome.REQUEUED, TaskState.QUEUED)
    row.state = new.value
    row.updated_at = now
    row.waiting_reason = None
    if event.pod_name:
        row.pod_name = event.pod_name
    if event.namespace:
        row.pod_namespace = event.namespace
    if event.pod_uid:
        row.pod_uid = event.pod_uid
    row.cluster = event.cluster
    at = event.occurred_at or now
    if new is TaskState.LAUNCHED:
        row.launched_at = at
    elif new is TaskState.RUNNING:
        row.launched_at = row.launched_at or at
        row.running_at = at
    else:
        row.finished_at = at
    if event.failure is not None or new.is_terminal:
        row.reason = event.failure.summary if event.failure is not None else None
    if disruption and row.disruptions:
        times = "time" if row.disruptions == 1 else "times"
        row.reason = f"{row.reason} (disrupted {row.disruptions} {times})"
    return Applied(Outcome.APPLIED, new)


def note_waiting(row: TaskRecord, event: TaskEvent, now: float) -> Applied:
    """Record on a QUEUED row what its launch waits on (a WAITING event); a replay, or one
    that arrives after the task moved on, changes nothing."""
    text = (event.failure.message or event.failure.reason) if event.failure else ""
    if row.state != TaskState.QUEUED.value or not text or row.waiting_reason == text:
        return Applied(Outcome.REPLAY)
    row.waiting_reason = text
    row.updated_at = now
    return Applied(Outcome.APPLIED, TaskState.QUEUED)


def is_foreign(row: TaskRecord, event: TaskEvent) -> bool:
    """Whether ``event`` is about a pod that is not the one podfleet made for the row's launch.

    A launch has one pod, ever: its name derives from the launch id and a launch record stops
    a second create. So a pod under another name, or under the launch's name with another uid
    than the one the row recorded (a copy re-applied after the pod was deleted), is someone
    else's, whatever labels it carries: its events must not decide the task. So is a pod in
    another cluster than the one the row recorded: a task runs on one cluster, never two.
    """
    if event.pod_name and event.pod_name != pod_name(event.key, event.launch_id):
        return True
    if row.cluster is not None and event.cluster != row.cluster:
        return True
    return bool(event.pod_uid and row.pod_uid and event.pod_uid != row.pod_uid)


def relaunch(row: TaskRecord, now: float, reason: str) -> TaskState:
    """Give ``row`` a fresh launch (new launch id, so a new pod name) and queue it again.

    Past :data:`MAX_LAUNCHES_PER_TRY` (plus one per disruption, which has its own budget) the
    try fails instead, with ``reason`` kept. Returns the row's new state.
    """
    row.updated_at = now
    if row.attempt >= MAX_LAUNCHES_PER_TRY + row.disruptions:
        row.state = TaskState.FAILED.value
        row.finished_at = now
        row.reason = f"gave up after {row.attempt} launches: {reason}"
        return TaskState.FAILED
    row.launch_id = new_launch_id()
    row.attempt += 1
    row.state = TaskState.QUEUED.value
    row.queued_at = now
    for column in LAUNCH_COLUMNS:
        setattr(row, column, None)
    row.reason = f"relaunch {row.attempt}: {reason}"
    return TaskState.QUEUED


def fail(row: TaskRecord, now: float, reason: str) -> None:
    row.state = TaskState.FAILED.value
    row.finished_at = now
    row.updated_at = now
    row.reason = reason
