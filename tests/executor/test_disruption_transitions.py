"""The state machine's rule for a disrupted pod: relaunch the same try within the budget, fail
it past the budget, and apply each disruption once however often its event is replayed."""

from __future__ import annotations

from podfleet.contracts.events import EventKind, EventSource, TaskEvent
from podfleet.contracts.failure import Failure
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import pod_name
from podfleet.contracts.states import TaskState
from podfleet.executor.db import TaskRow
from podfleet.executor.transitions import Outcome, apply_event

KEY = TaskKey("dag", "task", "run", -1, 1)
BUDGET = 3
EVICTED = Failure("EvictionByEvictionAPI", "drained", disruption="EvictionByEvictionAPI")


def running_row(disruptions: int = 0) -> TaskRow:
    return TaskRow(id=1, dag_id=KEY.dag_id, task_id=KEY.task_id, run_id=KEY.run_id,
                   map_index=KEY.map_index, try_number=KEY.try_number, executor_id="ex",
                   submitted_at=1.0, state=TaskState.RUNNING.value, launch_id="launch1",
                   attempt=1, pod_name=pod_name(KEY, "launch1"), pod_namespace="default",
                   pod_uid="uid1", queued_at=1.0, enqueued_at=1.5, launched_at=2.0,
                   running_at=3.0, finished_at=None, reason=None, updated_at=3.0,
                   disruptions=disruptions, waiting_reason=None)


def failed_event(row: TaskRow, failure: Failure) -> TaskEvent:
    return TaskEvent(key=KEY, launch_id=row.launch_id, executor_id="ex", kind=EventKind.STATE,
                     source=EventSource.WATCHER, state=TaskState.FAILED, failure=failure,
                     pod_name=row.pod_name, namespace="default", pod_uid=row.pod_uid,
                     occurred_at=4.0)


def test_a_disruption_within_the_budget_queues_the_same_try_under_a_new_launch() -> None:
    row = running_row()
    done = apply_event(row, failed_event(row, EVICTED), 5.0, disruption_retries=BUDGET)
    assert done.outcome is Outcome.REQUEUED
    assert (row.task_state, row.try_number, row.attempt, row.disruptions) == (
        TaskState.QUEUED, 1, 2, 1)
    assert row.launch_id != "launch1" and row.pod_name is None and row.enqueued_at is None


def test_a_replayed_disruption_changes_nothing_more() -> None:
    row = running_row()
    event = failed_event(row, EVICTED)
    apply_event(row, event, 5.0, disruption_retries=BUDGET)
    again = apply_event(row, event, 6.0, disruption_retries=BUDGET)
    assert again.outcome is Outcome.STALE
    assert (row.attempt, row.disruptions) == (2, 1)


def test_a_disruption_past_the_budget_fails_the_try_with_its_reason_and_count() -> None:
    row = running_row(disruptions=BUDGET)
    done = apply_event(row, failed_event(row, EVICTED), 5.0, disruption_retries=BUDGET)
    assert done.outcome is Outcome.APPLIED
    assert (row.task_state, row.reason) == (
        TaskState.FAILED, f"EvictionByEvictionAPI (disrupted {BUDGET + 1} times)")


def test_with_no_budget_a_disruption_fails_the_try_at_once() -> None:
    row = running_row()
    apply_event(row, failed_event(row, EVICTED), 5.0, disruption_retries=0)
    assert (row.task_state, row.reason) == (
        TaskState.FAILED, "EvictionByEvictionAPI (disrupted 1 time)")


def test_a_failure_that_is_no_disruption_fails_the_try_as_before() -> None:
    row = running_row()
    apply_event(row, failed_event(row, Failure("Error", exit_code=3)), 5.0,
                disruption_retries=BUDGET)
    assert (row.task_state, row.reason, row.disruptions) == (
        TaskState.FAILED, "Error (exit code 3)", 0)


def test_disruption_relaunches_do_not_use_up_the_launches_a_try_may_take() -> None:
    # Given a try already launched as often as a try may be without finishing
    row = running_row()
    row.attempt = 5
    # When its pod is disrupted, it is still relaunched (the disruption budget decides)
    apply_event(row, failed_event(row, EVICTED), 5.0, disruption_retries=BUDGET)
    assert (row.task_state, row.attempt) == (TaskState.QUEUED, 6)
