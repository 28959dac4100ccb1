"""A standalone user's path: ``podfleet submit`` (with and without ``--wait``) and
``podfleet executor``, as real commands against real workers, Redis, PostgreSQL and the
simulator, at the default delete policy."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_support import PODFLEET, Pipeline, wait_for

from podfleet.contracts.states import TaskState
from podfleet.local.ports import free_port
from podfleet.simulator.cluster import fate


@pytest.fixture
def world(pipeline: Pipeline) -> Pipeline:
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker()
    return pipeline


def podfleet(world: Pipeline, *args: str, timeout: float = 120,
             **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODFLEET, *args], env={**world.env, **env}, capture_output=True,
                          text=True, timeout=timeout)


def tasks_file(tmp_path: Path, fates: list[dict[str, str]]) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps({
        "dag_id": "cli", "task_id": f"t{i}", "run_id": "r1", "command": ["true"],
        "executor_config": {"annotations": {fate.DURATION: "0.2", **extra}}}) + "\n"
        for i, extra in enumerate(fates)))
    return path


def test_submit_wait_exits_0_when_every_task_succeeded(world: Pipeline, tmp_path: Path) -> None:
    result = podfleet(world, "submit", "--wait", "--from-file",
                      str(tasks_file(tmp_path, [{}, {}])))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "finished: 2 success" in result.stdout
    assert {r.task_state for r in world.rows()} == {TaskState.SUCCESS}


@pytest.mark.slow
def test_submit_wait_exits_1_and_names_the_failure_when_a_task_failed(
        world: Pipeline, tmp_path: Path) -> None:
    result = podfleet(world, "submit", "--wait", "--from-file",
                      str(tasks_file(tmp_path, [{}, {fate.OOM: "true"}])))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "finished: 1 failed, 1 success" in result.stdout
    assert "OOMKilled" in result.stdout


@pytest.mark.slow
def test_submit_wait_gives_up_after_its_timeout_with_exit_3(
        world: Pipeline, tmp_path: Path) -> None:
    result = podfleet(world, "submit", "--wait", "--timeout", "2", "--from-file",
                      str(tasks_file(tmp_path, [{fate.DURATION: "3600"}])))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "1 task(s) not finished after 2s" in result.stderr


def test_submit_says_how_many_were_sent_and_how_many_wait_for_a_slot(world: Pipeline) -> None:
    result = podfleet(world, "submit", "--dag-id", "cli", "--task-id", "fan", "--run-id", "r1",
                      "--count", "30", "--", "true", PODFLEET_PARALLELISM="10")
    assert result.returncode == 0, result.stderr
    assert "submitted 30 task(s)" in result.stdout
    assert "10 sent to the launch queue, 20 waiting for a slot (PODFLEET_PARALLELISM=10)" in (
        result.stdout)


def test_submit_with_redis_down_writes_the_tasks_and_exits_1_saying_so(world: Pipeline) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    result = podfleet(world, "submit", "--dag-id", "cli", "--task-id", "t", "--run-id", "r1",
                      "--", "true", PODFLEET_REDIS_URL=dead)
    assert result.returncode == 1
    assert "1 task(s) written" in result.stderr and "cannot be reached" in result.stderr
    (row,) = world.rows()
    assert (row.task_state, row.enqueued_at) == (TaskState.QUEUED, None)


@pytest.fixture
def executor_service(world: Pipeline) -> Iterator[subprocess.Popen[str]]:
    log = open(world.tmp_path / "executor-service.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [PODFLEET, "executor", "--interval", "0.2", "--metrics-port", "0"],
        env={**world.env, "PODFLEET_EXECUTOR_ID": "service"}, stdout=log,
        stderr=subprocess.STDOUT, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()
    log.close()


@pytest.mark.slow
def test_the_executor_service_follows_submitted_tasks_to_their_end(
        world: Pipeline, executor_service: subprocess.Popen[str], tmp_path: Path) -> None:
    # Given tasks submitted by the short-lived executor of `podfleet submit`
    result = podfleet(world, "submit", "--from-file",
                      str(tasks_file(tmp_path, [{}, {fate.EXIT_CODE: "3"}])))
    assert result.returncode == 0, result.stderr

    # Then the service adopts them and records their outcomes
    def outcomes() -> dict[str, TaskState] | None:
        rows = {r.task_id: r.task_state for r in world.rows()}
        return rows if all(s.is_terminal for s in rows.values()) else None

    assert wait_for(outcomes, 90, "the tasks to finish") == {
        "t0": TaskState.SUCCESS, "t1": TaskState.FAILED}
    assert {r.executor_id for r in world.rows()} == {"service"}


@pytest.mark.slow
def test_the_executor_service_stops_cleanly_on_sigterm(
        world: Pipeline, executor_service: subprocess.Popen[str]) -> None:
    status = wait_for(lambda: "service" in podfleet(world, "status").stdout, 60,
                      "the service to register")
    assert status
    executor_service.send_signal(signal.SIGTERM)
    assert executor_service.wait(timeout=30) == 0
    log = (world.tmp_path / "executor-service.log").read_text()
    assert "stopped; its unfinished tasks are adoptable" in log
