"""An executor that dies mid-run is adopted by a new one: every task finishes exactly once."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from pipeline_support import Pipeline, submission, task_key, wait_for

from podfleet.contracts.naming import EXECUTOR_LABEL
from podfleet.contracts.states import TaskState
from podfleet.executor import ExecutorFenced
from podfleet.simulator.cluster import fate

HEARTBEAT_TIMEOUT = 3.0


def test_a_crashed_executor_is_adopted_and_every_task_finishes_exactly_once(
        pipeline: Pipeline) -> None:
    # Given workers and executor A running a fleet of short and longer tasks
    pipeline.start_worker()
    pipeline.start_worker()
    timeouts = {"heartbeat_timeout_seconds": HEARTBEAT_TIMEOUT}
    first = pipeline.started_executor("exec-a", **timeouts)
    keys = [task_key(n) for n in range(40)]
    durations = {key: "0.5" if n % 2 else "6" for n, key in enumerate(keys)}
    first.submit_many([submission(key, {fate.DURATION: durations[key]}) for key in keys])
    pipeline.run_until(first, lambda: any(r.state is TaskState.RUNNING
                                          for r in pipeline.reports), 60, "a task running")
    # When A crashes: no terminate, no more heartbeats, its connections gone
    first.redis.close()
    first.broker.close()
    first.engine.dispose()
    crashed_at = time.monotonic()
    finished_by_a = pipeline.finished_keys()
    # ... and executor B starts after A's heartbeat expired
    time.sleep(HEARTBEAT_TIMEOUT + 0.5)
    second = pipeline.started_executor("exec-b", **timeouts)
    pipeline.run_until_finished(second, keys, timeout=60)
    assert time.monotonic() - crashed_at < 30

    # Then every task finished exactly once: reported by A before its crash or by B after
    terminal = pipeline.terminal_reports()
    assert terminal == Counter({(key, TaskState.SUCCESS): 1 for key in keys})
    by_executor = {r.key: r.executor for r in pipeline.reports if r.state.is_terminal}
    assert {k for k, ex in by_executor.items() if ex == "exec-a"} == finished_by_a
    assert len(finished_by_a) < len(keys)
    rows = pipeline.rows_by_key()
    assert {row.task_state for row in rows.values()} == {TaskState.SUCCESS}
    assert {row.attempt for row in rows.values()} == {1}
    assert {rows[k].executor_id for k in keys if k not in finished_by_a} == {"exec-b"}
    # ... with one pod per task and no launch repeated
    assert len(rows) == len(keys)
    pods = pipeline.kept_pod_per_row(rows)
    # ... and the pods A still had were relabelled to B
    adopted = {rows[k].launch_id for k in keys if k not in finished_by_a}
    assert {pods[launch]["metadata"]["labels"][EXECUTOR_LABEL] for launch in adopted} == {
        "exec-b"}

    # And A waking up is fenced: it may not change anything any more
    with pytest.raises(ExecutorFenced):
        wait_for(lambda: first.sync() is None, timeout=5, what="A to notice")
    with pytest.raises(ExecutorFenced):
        first.submit(task_key(99), ["true"])
