"""Redis behind Sentinel (``redis+sentinel://``), for the broker and podfleet's own state
alike: the primary SIGKILLed mid-run, the sentinels promote its replica, and the pipeline
carries on — no task lost, no pod made twice."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_support import Pipeline, open_pipeline, submit_tasks, wait_for

from podfleet.contracts.states import TaskState
from podfleet.local.redis_sentinel import SentinelGroup
from podfleet.simulator.server import RunningSimulator


@pytest.fixture
def sentinel_pipeline(sim: RunningSimulator, database_url: str,
                      sentinels: SentinelGroup, namespace: str,
                      tmp_path: Path) -> Iterator[Pipeline]:
    yield from open_pipeline(sim, database_url, sentinels.url, namespace, tmp_path)


def test_a_sentinel_failover_mid_run_loses_no_task_and_makes_no_second_pod(
        sentinel_pipeline: Pipeline, sentinels: SentinelGroup) -> None:
    pipeline = sentinel_pipeline
    # Given workers and an executor reaching Redis through three sentinels, launching at
    # 20 pods/s so launches are in flight; finished pods are deleted (the default policy)
    pipeline.env.update({"PODFLEET_DELETE_POLICY": "always", "PODFLEET_LAUNCH_RATE": "20"})
    pipeline.start_worker()
    pipeline.start_worker(watcher=False)
    pipeline.wait_for_watcher()
    executor = pipeline.started_executor(batch_size=20)
    keys = submit_tasks(executor, 100, "0.3")
    pipeline.run_until(executor, lambda: pipeline.stats().creates.accepted >= 20, 60,
                       "launches in flight")
    # When the primary is SIGKILLed and the sentinels promote the replica, while the
    # scheduler loop keeps syncing
    before = sentinels.primary_address()
    sentinels.kill_primary()
    assert pipeline.stats().creates.accepted < len(keys), "the kill must come mid-run"
    killed_at = time.monotonic()
    promoted = wait_for(lambda: sentinels.primary_address() != before, 30,
                        "the sentinels to name a new primary")
    assert promoted
    sentinels.wait_for_failover()
    failover_s = time.monotonic() - killed_at
    # Then every task finishes exactly once, with one pod each
    pipeline.run_until_finished(executor, keys, timeout=90)
    assert pipeline.terminal_reports() == Counter({(k, TaskState.SUCCESS): 1 for k in keys})
    rows = pipeline.rows_by_key()
    assert {(row.task_state, row.attempt) for row in rows.values()} == {(TaskState.SUCCESS, 1)}
    assert pipeline.stats().creates.accepted == len(keys)
    assert failover_s < 20
