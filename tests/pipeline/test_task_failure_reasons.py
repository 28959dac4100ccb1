"""A failed task's reason says what the kubelet said: an image name it refuses fails the task
with InvalidImageName, and a container's termination message (what it wrote to its
terminationMessagePath, or its log's tail with FallbackToLogsOnError) follows the exit code.
Real workers, Redis, PostgreSQL, and the simulator in local mode (each pod's command runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_support import Pipeline, task_key

from podfleet.contracts.states import TaskState
from podfleet.pods.merge import BASE_CONTAINER_NAME
from podfleet.simulator.cluster import fate

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def world(local_pipeline: Pipeline) -> Pipeline:
    return local_pipeline


def _reason_after_running(world: Pipeline, command: list[str], config: dict[str, object]
                          ) -> tuple[TaskState, str | None]:
    world.start_worker()
    executor = world.executor()
    executor.start()
    key = task_key(0)
    executor.submit(key, command, executor_config=config)
    world.run_until_finished(executor, [key], timeout=90)
    row = world.rows_by_key()[key]
    return row.task_state, row.reason


@pytest.mark.slow
def test_an_image_name_the_kubelet_refuses_fails_the_task_with_invalid_image_name(
        world: Pipeline) -> None:
    # An uppercase repository passes podfleet's own check (no whitespace) but no kubelet's
    state, reason = _reason_after_running(world, ["true"], {"image": "Apache/Airflow:2.9.0"})

    assert (state, reason) == (TaskState.FAILED, "InvalidImageName")


def test_a_termination_message_the_command_writes_is_in_the_tasks_reason(
        world: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    override = {"spec": {"containers": [{"name": BASE_CONTAINER_NAME,
                                         "terminationMessagePath": str(path)}]}}

    state, reason = _reason_after_running(
        world, ["sh", "-c", f"echo 'cannot reach the warehouse' > {path}; exit 3"],
        {"pod_override": override})

    assert (state, reason) == (TaskState.FAILED,
                               "Error (exit code 3): cannot reach the warehouse")


def test_fallback_to_logs_puts_the_failed_commands_last_lines_in_the_reason(
        world: Pipeline) -> None:
    override = {"spec": {"containers": [{"name": BASE_CONTAINER_NAME,
                                         "terminationMessagePolicy": "FallbackToLogsOnError"}]}}

    state, reason = _reason_after_running(
        world, ["sh", "-c", "echo starting; echo 'KeyError: region' >&2; exit 1"],
        {"pod_override": override})

    assert (state, reason) == (TaskState.FAILED, "Error (exit code 1): starting\nKeyError: region")


def test_a_simulated_containers_message_annotation_is_in_the_tasks_reason(
        pipeline: Pipeline) -> None:
    # The session's simulator, not in local mode: the pod's fate sets its message
    state, reason = _reason_after_running(pipeline, ["true"], {"annotations": {
        fate.EXIT_CODE: "2", fate.MESSAGE: "quota exceeded"}})

    assert (state, reason) == (TaskState.FAILED, "Error (exit code 2): quota exceeded")
