"""Launch ids a caller brings (Airflow's pre-assigned ``external_executor_id``), the view of
unfinished tries across executors, and adoption of an executor its owner declares dead."""

from __future__ import annotations

import pytest
from executor_support import ExecutorFactory, key, row_of

from podfleet.contracts.states import TaskState
from podfleet.executor import InvalidSubmission, TaskSubmission

GOOD = ["python", "-c", "print(1)"]
LAUNCH = "0123456789abcdef0123456789abcdef"


def test_a_caller_launch_id_names_the_launch(make_executor: ExecutorFactory,
                                             database_url: str) -> None:
    executor = make_executor()
    executor.start()
    [launch_id] = executor.submit_many([TaskSubmission(key(), GOOD, launch_id=LAUNCH)])
    assert launch_id == LAUNCH
    assert row_of(database_url, key()).launch_id == LAUNCH


@pytest.mark.parametrize("bad", ["not-hex", "ABCDEF0123456789ABCDEF0123456789", "ab" * 17])
def test_a_malformed_launch_id_is_refused_and_nothing_written(
        make_executor: ExecutorFactory, bad: str) -> None:
    executor = make_executor()
    executor.start()
    with pytest.raises(InvalidSubmission, match=r"launch_id .* 32 lowercase hex"):
        executor.submit_many([TaskSubmission(key(), GOOD, launch_id=bad)])
    assert executor.active_tries([key()]) == {}


def test_one_launch_id_twice_in_a_submit_is_refused(make_executor: ExecutorFactory) -> None:
    executor = make_executor()
    executor.start()
    with pytest.raises(InvalidSubmission, match="appears twice"):
        executor.submit_many([TaskSubmission(key("a"), GOOD, launch_id=LAUNCH),
                              TaskSubmission(key("b"), GOOD, launch_id=LAUNCH)])


def test_active_tries_finds_unfinished_tries_of_any_executor(
        make_executor: ExecutorFactory) -> None:
    owner = make_executor(executor_id="owner")
    owner.start()
    owner.submit_many([TaskSubmission(key("a"), GOOD, launch_id=LAUNCH)])
    other = make_executor(executor_id="other")
    found = other.active_tries([key("a"), key("missing")])
    assert list(found) == [key("a")]
    assert found[key("a")].launch_id == LAUNCH
    assert found[key("a")].executor_id == "owner"
    assert found[key("a")].state is TaskState.QUEUED


def test_a_live_executor_is_adopted_only_when_declared_dead(
        make_executor: ExecutorFactory) -> None:
    owner = make_executor(executor_id="airflow-1")
    owner.start()
    owner.submit_many([TaskSubmission(key("a"), GOOD)])
    heir = make_executor(executor_id="airflow-2")
    heir.start()
    assert heir.adopt_dead_executors() == []                     # its heartbeat is fresh
    assert heir.adopt_dead_executors({"airflow-1"}) == ["airflow-1"]
    assert heir.active_tries([key("a")])[key("a")].executor_id == "airflow-2"
