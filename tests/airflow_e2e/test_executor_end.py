"""``PodFleetExecutor.end()`` is bounded: on real processes (a local fleet's private Redis,
simulator and DB), Airflow's executor whose Redis died returns from ``end()`` and says what
it leaves for the next scheduler, instead of holding the scheduler's SIGTERM."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from airflow.models.taskinstancekey import TaskInstanceKey

from podfleet.airflow.executor import PodFleetExecutor
from podfleet.contracts.keys import TaskKey
from podfleet.executor import TaskSubmission
from podfleet.local.fleet import LocalFleet

pytestmark = pytest.mark.airflow

#: A correctness bound, not a performance target: without one, end() never returned.
END_BOUND_SECONDS = 10.0
JOB_ID = 4242


def test_end_returns_when_redis_is_gone_and_logs_what_it_leaves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    with LocalFleet(workdir=tmp_path) as fleet:
        # Given a started executor (settings from PODFLEET_*, as [podfleet] falls back) with
        # a task it runs
        for name, value in fleet.env.items():
            monkeypatch.setenv(name, value)
        executor = PodFleetExecutor()
        executor.job_id = JOB_ID
        executor.start()
        assert executor.fleet is not None
        executor.fleet.submit_many([TaskSubmission(TaskKey("pf_end", "t", "run-1"), ["true"])])
        executor.running.add(TaskInstanceKey("pf_end", "t", "run-1", 1, -1))
        # When Redis dies and Airflow ends the executor
        assert fleet.redis_server is not None
        fleet.redis_server.kill()
        with caplog.at_level(logging.INFO, logger="podfleet.executor"):
            ending = threading.Thread(target=executor.end, daemon=True)
            ending.start()
            ending.join(END_BOUND_SECONDS)
        # Then end() has returned, and said what it left for adoption
        assert not ending.is_alive(), f"end() still running after {END_BOUND_SECONDS}s"
        assert (f"executor airflow-{JOB_ID} stopped; left 1 task(s) QUEUED and 0 RUNNING "
                "for adoption by the next executor") in caplog.text
