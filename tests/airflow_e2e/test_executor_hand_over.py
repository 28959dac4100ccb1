"""``PodFleetExecutor.heartbeat()`` does nothing per workload: on real processes (a local
fleet's private Redis, simulator and DB), a burst leaves Airflow's queue and enters ``running``
within the heartbeat that takes it; the background thread writes it, and each task's QUEUED
event, with its pod's name, reaches the event buffer at a later heartbeat."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from airflow.executors.workloads.base import BundleInfo
from airflow.executors.workloads.task import ExecuteTask, TaskInstanceDTO
from airflow.utils.state import TaskInstanceState

from podfleet.airflow.executor import PodFleetExecutor
from podfleet.airflow.workloads import launch_id_for, task_key
from podfleet.contracts.naming import pod_name
from podfleet.local.fleet import LocalFleet

pytestmark = pytest.mark.airflow

#: A correctness bound on the background thread, not a performance target.
WAIT_SECONDS = 30.0


def workload(task_id: str) -> ExecuteTask:
    ti = TaskInstanceDTO(id=uuid.uuid4(), dag_version_id=uuid.uuid4(), task_id=task_id,
                         dag_id="pf_hand_over", run_id="run-1", try_number=1, map_index=-1,
                         pool_slots=1, queue="default", priority_weight=1,
                         external_executor_id=str(uuid.uuid4()))
    return ExecuteTask(ti=ti, dag_rel_path=Path("pf_hand_over.py"), token="", log_path=None,
                       bundle_info=BundleInfo(name="dags-folder"))


def test_a_burst_leaves_the_queue_in_one_heartbeat_and_is_reported_queued_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with LocalFleet(workdir=tmp_path) as fleet:
        for name, value in fleet.env.items():
            monkeypatch.setenv(name, value)
        executor = PodFleetExecutor()
        executor.job_id = 4343
        executor.start()
        try:
            # Given three queued workloads
            burst = [workload(f"t{i}") for i in range(3)]
            for item in burst:
                executor.queue_workload(item, session=None)  # type: ignore[arg-type]
            # When one heartbeat runs
            executor.heartbeat()
            # Then they left Airflow's queue and are running, all within that heartbeat
            assert not executor.queued_tasks
            assert executor.running == {w.ti.key for w in burst}
            # And at later heartbeats each is reported QUEUED with its pod's name, and written
            events: dict[Any, Any] = {}
            give_up = time.monotonic() + WAIT_SECONDS
            while len(events) < len(burst):
                assert time.monotonic() < give_up, f"QUEUED events: {events}"
                time.sleep(0.05)
                executor.heartbeat()
                events.update(executor.get_event_buffer())
            assert events == {
                w.ti.key: (TaskInstanceState.QUEUED,
                           pod_name(task_key(w.ti), launch_id_for(w.ti.external_executor_id,
                                                                  w.ti.id)))
                for w in burst}
            keys = [task_key(w.ti) for w in burst]

            def written() -> int:
                with executor._require_thread().using_fleet() as fleet:  # the thread waits
                    return len(fleet.active_tries(keys))
            while written() < len(burst):
                assert time.monotonic() < give_up, "the burst was not written"
                time.sleep(0.05)
        finally:
            executor.terminate()
