"""A typed failure: how a person reads it, and how it travels in a task event."""

from __future__ import annotations

import pytest

from podfleet.contracts.events import EventKind, EventSource, TaskEvent
from podfleet.contracts.failure import Failure
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState


@pytest.mark.parametrize(("failure", "summary"), [
    (Failure("Evicted", "the node ran out of disk"), "Evicted"),
    (Failure("OOMKilled", exit_code=137), "OOMKilled (exit code 137)"),
    (Failure("Error", exit_code=3, termination_message="disk full\n"),
     "Error (exit code 3): disk full"),
    (Failure("Error", exit_code=0, termination_message="  \n"), "Error (exit code 0)"),
    (Failure("PodDeleted", termination_message="bye"), "PodDeleted: bye"),
], ids=["reason-only", "exit-code", "termination-message", "blank-message", "no-exit-code"])
def test_the_summary_is_reason_then_exit_code_then_termination_message(
        failure: Failure, summary: str) -> None:
    assert failure.summary == summary


def test_a_failure_round_trips_through_its_wire_form() -> None:
    failure = Failure("Error", "container c0 exited with code 3", 3, "c0", "disk full\n")
    assert Failure.from_wire("Error", failure.to_wire()) == failure


def test_a_disruptions_reason_round_trips_through_its_wire_form() -> None:
    failure = Failure("EvictionByEvictionAPI", "drained", disruption="EvictionByEvictionAPI")
    assert Failure.from_wire(failure.reason, failure.to_wire()) == failure


def test_wire_values_of_the_wrong_type_are_dropped() -> None:
    wire = {"exit_code": True, "container": 7, "message": ["x"], "termination_message": 1,
            "disruption": 5}
    assert Failure.from_wire("Error", wire) == Failure("Error")


def _failed_event(**detail: object) -> TaskEvent:
    return TaskEvent(key=TaskKey("d", "t", "r"), launch_id="l", executor_id="e",
                     kind=EventKind.STATE, source=EventSource.WATCHER, state=TaskState.FAILED,
                     occurred_at=1.0, detail=dict(detail))


def test_an_event_written_before_failures_were_typed_reads_as_a_typed_failure() -> None:
    # Given the fields an older watcher wrote: the failure's parts were keys of "detail"
    fields = _failed_event(node="n1", exit_code=3, message="exited with code 3",
                           container="base", termination_message="disk full").to_fields()
    fields = {k: v for k, v in fields.items() if k != "failure"} | {"reason": "Error"}
    # When it is read
    event = TaskEvent.from_fields(fields)
    # Then the failure is typed and the detail keeps only what is not the failure
    assert event.failure == Failure("Error", "exited with code 3", 3, "base", "disk full")
    assert event.detail == {"node": "n1"}


def test_an_event_without_a_reason_carries_no_failure() -> None:
    event = TaskEvent.from_fields(_failed_event(exit_code=0).to_fields())
    assert event.failure is None and event.detail == {"exit_code": 0}
