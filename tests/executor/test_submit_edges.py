"""Input that used to get through submit (or end in a traceback) is refused with a one-line
reason naming the task and field, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from executor_support import ExecutorFactory, key, rows

from podfleet.executor import InvalidSubmission, TaskSubmission
from podfleet.executor.submission import deadline_seconds

GOOD = ["echo", "hi"]


@pytest.mark.parametrize(("submission", "message"), [
    (TaskSubmission(("etl\n", "t", "r", -1, 1), GOOD), r"dag_id 'etl\\n' may contain only"),
    (TaskSubmission(("etl", "load\n", "r", -1, 1), GOOD), r"task_id 'load\\n' may contain"),
    (TaskSubmission(key("init"), GOOD, executor_config={"pod_override": {"spec": {
        "initContainers": [{"name": "setup", "resources": {"limits": {
            "memory": "12 potatoes"}}}]}}}),
     r"pod_override.spec.initContainers\[0\].resources"),
    (TaskSubmission(key("huge"), ["echo", "x" * (1024 * 1024 + 1)]),
     r"its pod would be [\d,]+ bytes .*more than the API server stores"),
])
def test_input_the_api_would_refuse_is_refused_at_submit(
        make_executor: ExecutorFactory, database_url: str, submission: TaskSubmission,
        message: str) -> None:
    with pytest.raises(InvalidSubmission, match=message):
        make_executor().submit_many([submission])
    assert rows(database_url) == []


def test_a_launch_id_another_try_holds_is_refused_in_one_line(
        make_executor: ExecutorFactory, database_url: str) -> None:
    executor = make_executor()
    launch_id = "a" * 32
    executor.submit_many([TaskSubmission(key("first"), GOOD, launch_id=launch_id)])
    with pytest.raises(InvalidSubmission, match=f"launch_id {launch_id} is already used by"):
        executor.submit_many([TaskSubmission(key("second"), GOOD, launch_id=launch_id)])
    assert [r.task_id for r in rows(database_url)] == [key("first").task_id]


@pytest.mark.parametrize(("value", "expected"), [
    (1_900_000_000, 1_900_000_000.0),
    ("1900000000.5", 1_900_000_000.5),
    ("2030-03-17T17:46:40Z", 1_900_000_000.0),
    ("2030-03-17T18:46:40+01:00", 1_900_000_000.0),
])
def test_a_deadline_is_an_absolute_time(value: Any, expected: float) -> None:
    assert deadline_seconds(value) == expected


@pytest.mark.parametrize("value", ["2030-03-17T17:46:40", "in an hour", True])
def test_a_deadline_that_is_not_a_definite_time_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="deadline"):
        deadline_seconds(value)
