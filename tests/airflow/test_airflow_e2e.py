"""Airflow 3.3 with ``[core] executor = podfleet.airflow.PodFleetExecutor``, end to end.

Real processes on loopback: api-server, dag-processor, scheduler, podfleet workers, a private
Redis and the simulator in local mode, which runs each pod's command (the Task SDK's entry
point), so every task really runs and reports its own state to the api-server.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow_support import AirflowStack, wait_for

from podfleet.kube.client import KubeClient
from podfleet.simulator.server import RunningSimulator

pytestmark = pytest.mark.airflow


def _states(stack: AirflowStack, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
    return {(ti["task_id"], ti["map_index"]): ti["state"]
            for ti in stack.task_instances(dag_id, run_id)}


def _pods(sim: RunningSimulator, selector: str) -> list[dict[str, Any]]:
    kube = KubeClient(sim.api_client())
    try:
        return kube.list_pods("default", label_selector=selector)
    finally:
        kube.close()


def test_a_dag_with_xcom_mapped_tasks_and_bash_succeeds(airflow_stack: AirflowStack) -> None:
    run_id = airflow_stack.trigger("pf_pipeline")
    assert airflow_stack.wait_for_run("pf_pipeline", run_id) == "success", \
        _states(airflow_stack, "pf_pipeline", run_id)
    states = _states(airflow_stack, "pf_pipeline", run_id)
    assert states == {("numbers", -1): "success", ("double", 0): "success",
                      ("double", 1): "success", ("double", 2): "success",
                      ("total", -1): "success", ("bash", -1): "success"}
    xcom = airflow_stack.get(f"/dags/pf_pipeline/dagRuns/{run_id}/taskInstances/total"
                             "/xcomEntries/return_value")
    assert str(xcom["value"]) == "12"


def test_a_failing_task_fails_although_its_pod_may_exit_cleanly(
        airflow_stack: AirflowStack) -> None:
    run_id = airflow_stack.trigger("pf_failing")
    assert airflow_stack.wait_for_run("pf_failing", run_id) == "failed"
    assert _states(airflow_stack, "pf_failing", run_id) == {("boom", -1): "failed"}
