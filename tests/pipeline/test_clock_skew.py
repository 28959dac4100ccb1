"""Hosts whose clocks are off: deadlines are judged on Redis' clock and heartbeats on the
database's, so a skewed host neither expires every launch nor takes a live executor for dead,
and says "clock skew" where it sees it. The skewed processes run under libfaketime
(tests/skewed_clock.py), with their real clock untouched for everyone else."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from pipeline_support import PODFLEET, Pipeline, submission, task_key, wait_for
from skewed_clock import skewed_clock_env

from podfleet.contracts.states import TaskState
from podfleet.executor.db import ExecutorRecord, make_engine
from podfleet.simulator.cluster import fate


def test_a_worker_700s_ahead_launches_tasks_rather_than_failing_them_as_expired(
        pipeline: Pipeline) -> None:
    # Given a worker host whose clock is 700 s ahead, and launches with the default deadline
    # (the stuck-QUEUED timeout, 600 s, and a little more)
    skew = skewed_clock_env(700)
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker(**skew)
    executor = pipeline.started_executor(queued_timeout_seconds=600)
    keys = [task_key(n) for n in range(5)]
    # When tasks are submitted
    executor.submit_many([submission(key, {fate.DURATION: "0.2"}) for key in keys])
    pipeline.run_until_finished(executor, keys, timeout=90)
    # Then each ran once and succeeded, and the worker said its clock is off
    assert {r.reason for r in pipeline.rows()} == {None}, pipeline.worker_logs()[-3000:]
    assert pipeline.terminal_reports() == Counter({(k, TaskState.SUCCESS): 1 for k in keys})
    assert "clock skew: this host's clock is 700 s ahead of Redis" in pipeline.worker_logs()


def test_an_executor_120s_ahead_does_not_take_a_live_executor_for_dead(
        pipeline: Pipeline, tmp_path: Path) -> None:
    # Given a live executor with a task (its heartbeat fresh on the database's clock)
    live = pipeline.started_executor("exec-live")
    live.submit_many([submission(task_key(0), {fate.DURATION: "0.2"})])
    live.sync()
    # When an executor whose host clock is 120 s ahead starts and syncs (the heartbeat
    # timeout is 60 s), as `podfleet executor`, which adopts dead executors
    log_path = tmp_path / "ahead.log"
    with log_path.open("wb") as log:
        ahead = subprocess.Popen(
            [PODFLEET, "executor", "--interval", "0.2"], stdout=log, stderr=subprocess.STDOUT,
            env={**pipeline.env, "PODFLEET_EXECUTOR_ID": "exec-ahead",
                 **skewed_clock_env(120)})
    try:
        # start() adopts dead executors before it says it follows tasks
        wait_for(lambda: "following tasks" in log_path.read_text(), 60,
                 "the skewed executor to start")
    finally:
        ahead.terminate()
        ahead.wait(timeout=30)
    # Then the live executor was not adopted: still running, its task still its own
    engine = make_engine(pipeline.database_url)
    with engine.connect() as connection:
        state, adopted_by = connection.execute(
            sa.select(ExecutorRecord.state, ExecutorRecord.adopted_by)
            .where(ExecutorRecord.id == "exec-live")).one()
    engine.dispose()
    assert (state, adopted_by) == ("running", None)
    assert {row.executor_id for row in pipeline.rows()} == {"exec-live"}
    live.sync()  # not fenced
    # And the skewed executor said why its clock cannot be trusted
    assert "clock skew: this host's clock is 120 s ahead of the metadata database" in \
        log_path.read_text()
