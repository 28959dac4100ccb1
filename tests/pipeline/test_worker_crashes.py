"""Worker processes SIGKILLed mid-run: the watcher's (another worker takes over within the
lease time) and a launcher's mid-batch (its message is redelivered). Every task still
finishes exactly once, with exactly one pod."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from pipeline_support import (
    BROKER_HEARTBEAT_TIMEOUT_SECONDS,
    LEASE_SECONDS,
    Pipeline,
    submission,
    submit_tasks,
    task_key,
    wait_for,
)

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.simulator.cluster import fate
from podfleet.workers.watcher.actor import supervisor_interval


@pytest.mark.slow
def test_the_watchers_worker_killed_mid_run_is_replaced_and_nothing_is_lost(
        pipeline: Pipeline) -> None:
    # Given two workers, one of which watches, and a fleet of tasks finishing over ~3 s; finished
    # pods are deleted (the default policy)
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker()
    pipeline.start_worker()
    first = pipeline.wait_for_watcher()
    executor = pipeline.started_executor()
    keys = [task_key(n) for n in range(60)]
    executor.submit_many([submission(key, {fate.DURATION: f"{0.2 + (n % 10) * 0.3:.1f}"})
                          for n, key in enumerate(keys)])
    pipeline.run_until(executor, lambda: pipeline.stats().creates.accepted == len(keys)
                       and len(pipeline.finished_keys()) >= 5, 60, "tasks finishing")
    assert len(pipeline.finished_keys()) < len(keys) - 10, "the kill must come mid-run"
    # When the worker holding the watcher lease is SIGKILLed
    pid = int(first.holder.split(":")[1])
    pipeline.kill_worker(pipeline.worker_of(pid))
    killed_at = time.monotonic()
    # Then the other worker takes the lease, with a larger token, within the lease time
    second = pipeline.wait_for_watcher(timeout=30, other_than=first)
    assert second.token > first.token
    assert int(second.holder.split(":")[1]) != pid
    assert time.monotonic() - killed_at < LEASE_SECONDS + supervisor_interval(LEASE_SECONDS) + 2
    # ... and every task finishes exactly once
    pipeline.run_until_finished(executor, keys, timeout=60)
    # ... with one pod per task, each deleted once it finished
    _each_succeeded_once_on_one_deleted_pod(pipeline, keys)


def test_a_launcher_killed_mid_batch_loses_no_task_and_makes_no_second_pod(
        pipeline: Pipeline) -> None:
    # Given a watching worker that launches nothing, and one launcher at 20 pods/s; finished
    # pods are deleted at once (the default policy), so a redelivered launch finds its
    # earliest pods gone
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker(queues=["podfleet.watch"])
    launcher = pipeline.start_worker(watcher=False, PODFLEET_LAUNCH_RATE="20")
    pipeline.wait_for_watcher()
    executor = pipeline.started_executor(batch_size=50)
    keys = submit_tasks(executor, 100, "0.3")
    # When the launcher is SIGKILLed in the middle of both 50-pod batches
    wait_for(lambda: pipeline.stats().creates.accepted >= 25, timeout=60,
             what="the launcher to be mid-batch")
    pipeline.kill_worker(launcher)
    created_by_the_dead = pipeline.stats().creates.accepted
    assert created_by_the_dead < 50, "neither batch may have finished before the kill"
    # ... and another launcher starts
    killed_at = time.monotonic()
    pipeline.start_worker(watcher=False)
    # Then its messages are redelivered and every task finishes exactly once
    pipeline.run_until_finished(executor, keys, timeout=60)
    assert time.monotonic() - killed_at > BROKER_HEARTBEAT_TIMEOUT_SECONDS
    # ... with one pod per task: the redelivered launches created nothing the dead launcher
    # had created, although most of those pods had finished and were deleted meanwhile
    _each_succeeded_once_on_one_deleted_pod(pipeline, keys)


def _each_succeeded_once_on_one_deleted_pod(pipeline: Pipeline, keys: list[TaskKey]) -> None:
    """Every task reported SUCCESS exactly once, at its first attempt, from the one pod made
    for it, which was deleted once it finished (and no pod came after)."""
    assert pipeline.terminal_reports() == Counter({(key, TaskState.SUCCESS): 1 for key in keys})
    rows = pipeline.rows_by_key()
    assert {(row.task_state, row.attempt) for row in rows.values()} == {(TaskState.SUCCESS, 1)}
    assert pipeline.stats().creates.accepted == len(keys)
    wait_for(lambda: not pipeline.pods(), timeout=30, what="every finished pod deleted")
    assert pipeline.stats().creates.accepted == len(keys)
