"""Task logs end to end, at default settings (delete policy ``always``): real workers, Redis,
PostgreSQL, and the simulator in local mode, where each pod's command really runs and its
output is the pod's log. A finished task's log outlives its pod; a running one can be
followed; a broken archive delays no deletion and loses no task event."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_support import PODFLEET, ROOT, Pipeline, task_key, wait_for

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.executor.logs import TaskLogUnavailable
from podfleet.logs.archive import LogArchive

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def world(local_pipeline: Pipeline, tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = local_pipeline
    # podfleet's defaults, but for the archive, which goes into this test's directory.
    del pipeline.env["PODFLEET_DELETE_POLICY"]
    pipeline.env["PODFLEET_LOG_ARCHIVE"] = str(tmp_path / "logs")
    yield pipeline


def shell(script: str) -> list[str]:
    return ["sh", "-c", script]


def started_fleet(world: Pipeline) -> Executor:
    """A worker, and a started executor: the fleet a test's task runs on."""
    world.start_worker()
    executor = world.executor()
    executor.start()
    return executor


def finished_task(world: Pipeline, script: str,
                  executor_config: dict[str, object] | None = None,
                  ) -> tuple[Executor, TaskKey, str]:
    """A worker and a started executor that ran one task of ``script`` to its end:
    (the executor, the task's key, its launch id)."""
    executor = started_fleet(world)
    key = task_key(0)
    launch_id = executor.submit(key, shell(script), executor_config=executor_config)
    world.run_until_finished(executor, [key], timeout=90)
    return executor, key, launch_id


def wait_deleted(world: Pipeline, executor: Executor, launch_id: str) -> None:
    """Drive the executor until the launch's pod is gone (the default delete policy)."""
    world.run_until(executor, lambda: launch_id not in world.pods_by_launch(), 60,
                    "the finished pod to be deleted")


def podfleet_logs(world: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    """``podfleet logs ARGS`` run as a user runs it, on the fleet's environment."""
    env = {**world.env, "PATH": str(Path(PODFLEET).parent) + ":/usr/bin:/bin"}
    return subprocess.run([PODFLEET, "logs", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.slow
def test_a_finished_tasks_log_is_read_from_the_archive_after_its_pod_is_deleted(
        world: Pipeline) -> None:
    # Given a worker and an executor at default settings (delete policy always)
    # When a task that writes to stdout and stderr runs to success
    executor, key, launch_id = finished_task(world, "echo hello from the task; echo oops >&2")
    # Then its pod is deleted ...
    wait_deleted(world, executor, launch_id)
    # ... and its log is still there, read from the archive
    log = executor.task_log(key)
    assert (log.source, log.launch_id) == ("archive", launch_id)
    assert log.text.splitlines() == ["hello from the task", "oops"]
    assert world.terminal_reports() == Counter({(key, TaskState.SUCCESS): 1})


@pytest.mark.slow
def test_podfleet_logs_prints_a_deleted_pods_log_by_key_and_by_launch_id(
        world: Pipeline) -> None:
    # Given a failed task whose pod was deleted
    executor, key, launch_id = finished_task(world, "echo line one; echo line two; exit 3")
    wait_deleted(world, executor, launch_id)
    # When the command line asks for it by key (latest try), and by launch id with --tail
    by_key = podfleet_logs(world, f"{key.dag_id}/{key.task_id}/{key.run_id}")
    by_launch = podfleet_logs(world, launch_id, "--tail", "1")
    # Then it prints the archived log
    assert (by_key.returncode, by_key.stdout) == (0, "line one\nline two\n"), by_key.stderr
    assert (by_launch.returncode, by_launch.stdout) == (0, "line two\n"), by_launch.stderr


def test_a_running_tasks_log_can_be_followed_until_it_ends(world: Pipeline,
                                                           tmp_path: Path) -> None:
    # Given a running task that writes a line, then waits for a gate file before the next
    executor = started_fleet(world)
    key = task_key(0)
    gate = tmp_path / "gate"
    executor.submit(key, shell(f"echo before the gate; while [ ! -e {gate} ]; do sleep 0.1; "
                               f"done; echo after the gate"))
    followed: list[str] = []
    ended = threading.Event()

    def follow() -> None:
        try:
            # Started at once: the follower waits for the pod to exist and start.
            followed.extend(world.executor().follow_task_log(key))
        finally:
            ended.set()

    # When its log is followed (off the scheduler loop's thread, as the docstring asks)
    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    world.run_until(executor, lambda: "before the gate" in "".join(followed), 90,
                    "the first line to be followed")
    # Then the first line arrives while the task still runs, and the rest once it goes on
    assert not ended.is_set()
    assert key not in world.finished_keys()
    gate.touch()
    world.run_until(executor, ended.is_set, 90, "the followed log to end")
    assert "".join(followed).splitlines() == ["before the gate", "after the gate"]
    world.run_until_finished(executor, [key], timeout=60)


@pytest.mark.slow
def test_an_unusable_archive_delays_no_deletion_and_loses_no_task_event(
        world: Pipeline, tmp_path: Path) -> None:
    # Given an archive that stops being writable after the fleet started (its folder is
    # replaced by a regular file; a missing one is refused at start)
    executor = started_fleet(world)
    world.wait_for_watcher()  # the worker checked its archive at start
    archive = Path(world.env["PODFLEET_LOG_ARCHIVE"])
    archive.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(archive)
    archive.write_text("")
    keys = [task_key(n) for n in range(3)]
    executor.submit_many([TaskSubmission(key, shell("echo unarchivable")) for key in keys])
    # When the tasks finish
    world.run_until_finished(executor, keys, timeout=90)
    # Then every task's outcome arrived, and every pod was still deleted (after the retries)
    assert world.terminal_reports() == Counter({(key, TaskState.SUCCESS): 1 for key in keys})
    world.run_until(executor, lambda: not world.pods(), 90, "the pods to be deleted anyway")
    wait_for(lambda: "giving up archiving the log of pod" in world.worker_logs(), 30,
             "the worker to say it gave up archiving")
    # ... and asking for the log says the archive write failed, when and why, rather than
    # that there is none: through the executor and through `podfleet logs`
    with pytest.raises(TaskLogUnavailable,
                       match=r"the archive write for this pod failed at .* UTC: "):
        executor.task_log(keys[0])
    # ... also once the archive works again (`podfleet logs` checks it at start)
    archive.unlink()
    archive.mkdir()
    launch_id = world.rows_by_key()[keys[0]].launch_id
    command = podfleet_logs(world, launch_id)
    assert command.returncode != 0 and "Traceback" not in command.stderr, command.stderr
    assert "the archive write for this pod failed at" in command.stderr
    assert "Error" in command.stderr  # the archive's own error, named


def test_a_queued_task_has_no_log_yet_and_an_unknown_one_is_named(world: Pipeline) -> None:
    # Given an executor and no worker (so nothing launches)
    executor = world.executor()
    executor.start()
    key = task_key(0)
    executor.submit(key, shell("echo never"))
    # Then its log is unavailable, with the reason, and a try the DB does not know is named
    with pytest.raises(TaskLogUnavailable, match="is queued: its pod does not exist yet"):
        executor.task_log(key)
    with pytest.raises(TaskLogUnavailable, match=r"no task try pipeline\.task-9 run-1 try 1"):
        executor.task_log(task_key(9))


@pytest.mark.slow
def test_the_archive_written_by_the_watcher_has_the_documented_layout(
        world: Pipeline, tmp_path: Path) -> None:
    # Given a task that ran to completion with the default delete policy
    _, key, launch_id = finished_task(world, "echo laid out")
    # Then its log is a file at dag_id=/run_id=/task_id=/map_index=/try=/<launch id>.log
    path = (tmp_path / "logs" / "dag_id=pipeline" / "run_id=run-1" / "task_id=task-0"
            / "map_index=-1" / "try=1" / f"{launch_id}.log")
    wait_for(path.is_file, 60, f"{path} to be written")
    assert path.read_text() == "laid out\n"
    found = LogArchive.open(str(tmp_path / "logs")).read(key)
    assert found is not None and found.data == b"laid out\n"


def with_sidecar() -> dict[str, object]:
    """An executor_config adding a second container, as a sidecar or a service mesh does."""
    return {"pod_override": {"spec": {"containers": [
        {"name": "sidecar", "image": "busybox", "command": ["sh", "-c", "sleep 300"]}]}}}


@pytest.mark.slow
def test_a_running_tasks_log_is_its_own_containers_when_the_pod_has_a_sidecar(
        world: Pipeline, tmp_path: Path) -> None:
    # Given a running task whose pod also has a sidecar container
    executor = started_fleet(world)
    key = task_key(0)
    gate = tmp_path / "gate"
    executor.submit(key, shell(f"echo task line; while [ ! -e {gate} ]; do sleep 0.1; done"),
                    executor_config=with_sidecar())

    def live() -> bool:
        try:
            return "task line" in executor.task_log(key).text
        except TaskLogUnavailable:
            return False
    # When its log is read while it runs
    world.run_until(executor, live, 90, "the running task's log")
    log = executor.task_log(key)
    # Then it is the task container's log, read from the pod
    assert (log.source, log.text) == ("pod", "task line\n")
    gate.touch()
    world.run_until_finished(executor, [key], timeout=90)


@pytest.mark.slow
def test_a_kept_pods_log_is_read_from_its_task_container_despite_a_sidecar(
        world: Pipeline) -> None:
    # Given a delete policy that keeps pods, and a finished task whose pod has a sidecar
    world.env["PODFLEET_DELETE_POLICY"] = "never"
    executor, key, launch_id = finished_task(world, "echo kept task line", with_sidecar())
    # When its log is read
    log = executor.task_log(key)
    # Then the kept pod's task container answers
    assert (log.source, log.launch_id, log.text) == ("pod", launch_id, "kept task line\n")
