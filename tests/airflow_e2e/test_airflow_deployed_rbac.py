"""Airflow end to end under deploy/'s Roles: the scheduler and the api-server (the
PodFleetExecutor in both) run as deploy/kubernetes' executor ServiceAccount and the podfleet
worker as its worker ServiceAccount, with the simulator enforcing RBAC. A DAG of mapped, XCom
and bash tasks runs to success, a finished task's log is read back (from the archive the
worker wrote) and a running task's from its pod, and no call of either ServiceAccount is
denied.

The session's stack is restarted under those identities for this test, then restarted as it
was (the cluster admin's kubeconfig) for the tests after it. Airflow gets the executor's
kubeconfig as `AIRFLOW__PODFLEET__KUBECONFIG`: Airflow wrote airflow.cfg at its first start
with the `[podfleet]` options' defaults of the time (the admin's `PODFLEET_KUBECONFIG`), and a
`[podfleet]` option beats the `PODFLEET_*` variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from airflow_support import AirflowStack, wait_for
from deployed_rbac import Identity, apply_deploy_rbac

from podfleet.simulator.server import RunningSimulator

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.timeout(900)]

NAMESPACE = "default"  # where the session stack's pods run
#: Airflow's variable for `[podfleet] kubeconfig`, which airflow.cfg sets (to the admin's).
AIRFLOW_KUBECONFIG = "AIRFLOW__PODFLEET__KUBECONFIG"


def _restart(stack: AirflowStack, kubeconfigs: dict[str, str]) -> None:
    """Stop the worker, the scheduler and the api-server (which reads running tasks' logs
    through the executor), and start them again, each with its kubeconfig from
    ``kubeconfigs`` (by component)."""
    for name in ("scheduler", "api-server", "worker"):
        if name in stack.processes:
            stack.kill(name)
    saved = dict(stack.env)
    try:
        stack.env["PODFLEET_KUBECONFIG"] = kubeconfigs["worker"]
        stack.start_worker()
        stack.env[AIRFLOW_KUBECONFIG] = kubeconfigs["executor"]
        stack.start_airflow("api-server")
        wait_for(stack.api_up, 180, "the api-server")
        stack.start_airflow("scheduler")
    finally:
        stack.env.clear()
        stack.env.update(saved)


def _run_state(stack: AirflowStack, dag_id: str, run_id: str) -> str:
    """The run's final state; a REST call that times out (an api-server starved of CPU on
    a loaded machine) is asked again rather than failing the test."""
    def finished() -> str | None:
        try:
            state = stack.get(f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        except requests.Timeout:
            return None
        return str(state) if state in ("success", "failed") else None
    return wait_for(finished, 480, f"run {dag_id}/{run_id} to finish")


@pytest.fixture
def as_deployed(airflow_stack: AirflowStack, sim: RunningSimulator,
                tmp_path: Path) -> Iterator[dict[str, Identity]]:
    identities = apply_deploy_rbac(sim, NAMESPACE, tmp_path)
    admin = airflow_stack.env["PODFLEET_KUBECONFIG"]
    sim.admin.reset_stats()  # from here on, every call the two identities make is counted
    _restart(airflow_stack, {"worker": str(identities["podfleet-worker"].kubeconfig),
                             "executor": str(identities["podfleet-executor"].kubeconfig)})
    try:
        yield identities
    finally:
        _restart(airflow_stack, {"worker": admin, "executor": admin})


def _log_with(stack: AirflowStack, dag_id: str, run_id: str, task_id: str,
              line: str) -> str | None:
    """The task's first try's log through the REST API once it has ``line``; a read that
    times out (a starved api-server) is asked again."""
    try:
        text = stack.task_log(dag_id, run_id, task_id, 1)
    except requests.Timeout:
        return None
    return text if line in text else None


def test_a_dag_runs_and_its_logs_are_read_under_the_deployed_roles_with_no_call_denied(
        airflow_stack: AirflowStack, sim: RunningSimulator,
        as_deployed: dict[str, Identity]) -> None:
    worker, executor = as_deployed["podfleet-worker"], as_deployed["podfleet-executor"]
    # When a DAG of mapped, XCom and bash tasks runs
    run_id = airflow_stack.trigger("pf_pipeline")
    assert _run_state(airflow_stack, "pf_pipeline", run_id) == "success"
    # ... and a finished task's log is read through the REST API (the archive)
    wait_for(lambda: _log_with(airflow_stack, "pf_pipeline", run_id, "bash",
                               "podfleet-bash-ran"), 60, "the bash task's log")
    # ... and a running task's log too (from its pod, through the executor)
    slow_run = airflow_stack.trigger("pf_slow", {"seconds": 20})
    airflow_stack.wait_for_ti_state("pf_slow", slow_run, "sleepy", {"running"}, timeout=300)
    live = wait_for(lambda: _log_with(airflow_stack, "pf_slow", slow_run, "sleepy",
                                      "still working"), 60, "the running task's log")
    assert "Found logs in the pod" in live
    assert _run_state(airflow_stack, "pf_slow", slow_run) == "success"

    # Then both ServiceAccounts made calls, and RBAC denied none of them
    decisions = sim.admin.authorization()
    users = {d.request.user for d in decisions}
    assert {worker.user, executor.user} <= users, users
    assert worker.denied(decisions) == []
    assert executor.denied(decisions) == []
    # ... and the executor's were its own: start-up reconciliation's pod list, the log read
    used = {(d.request.verb, d.request.resource_name) for d in decisions
            if d.request.user == executor.user and d.allowed}
    assert {("list", "pods"), ("get", "pods/log")} <= used, used
