"""Redis lost mid-run (SIGKILL, restarted empty on the same port): reconciliation from the DB
and the watcher's relist complete every task; none is lost, none runs twice."""

from __future__ import annotations

from collections import Counter

import pytest
from pipeline_support import Pipeline, submission, task_key, wait_for

from podfleet.contracts.states import TaskState
from podfleet.local.redis_server import RedisServer
from podfleet.simulator.cluster import fate


@pytest.mark.slow
def test_redis_restarted_empty_mid_run_loses_and_duplicates_nothing(
        private_pipeline: Pipeline, private_redis: RedisServer) -> None:
    pipeline = private_pipeline
    # Given workers launching at a bounded rate, so messages still wait in Redis mid-run. The
    # pods are kept (policy never): a Redis that loses its data loses the terminal events of
    # pods already deleted, and only a kept pod can tell its outcome again. With the default
    # policy, Redis must keep its data (an AOF): see test_queue_faults.py.
    pipeline.start_worker(PODFLEET_LAUNCH_RATE="15")
    pipeline.start_worker(PODFLEET_LAUNCH_RATE="15")
    executor = pipeline.started_executor()
    keys = [task_key(n) for n in range(60)]
    durations = {key: "0.3" if n % 3 else "4" for n, key in enumerate(keys)}
    executor.submit_many([submission(key, {fate.DURATION: durations[key]}) for key in keys])
    pipeline.run_until(executor, lambda: pipeline.stats().creates.accepted >= 15
                       and any(r.state is TaskState.RUNNING for r in pipeline.reports),
                       60, "pods created and running")
    # When Redis is killed and comes back empty on the same port
    private_redis.kill()
    created_before = pipeline.stats().creates.accepted
    assert created_before < len(keys), "the kill must come while launches are pending"
    private_redis.start()
    # Then every task still finishes
    pipeline.run_until_finished(executor, keys, timeout=90)

    terminal = pipeline.terminal_reports()
    assert terminal == Counter({(key, TaskState.SUCCESS): 1 for key in keys})
    rows = pipeline.rows_by_key()
    assert {row.task_state for row in rows.values()} == {TaskState.SUCCESS}
    assert {row.attempt for row in rows.values()} == {1}
    # ... each with exactly one pod: resent launches kept their launch id, so their pod name
    stats = pipeline.stats()
    assert stats.creates.accepted == len(keys)
    pods = pipeline.pods_by_launch()
    assert set(pods) == {row.launch_id for row in rows.values()}
    assert len(pipeline.pods()) == len(keys)
    # ... none of which was deleted (the policy is "never": a late LAUNCHED from a redelivered
    # launch is a report about the pod that finished the task, not a pod to remove)
    assert stats.requests.get("delete", {}) == {}
    # And a watcher holds the lease again in the new Redis
    wait_for(pipeline.watcher, timeout=10, what="a watcher in the new Redis")
