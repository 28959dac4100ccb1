"""Airflow 3.3 with ``[core] executor = podfleet.airflow.PodFleetExecutor``, end to end.

Real processes on loopback: api-server, dag-processor, scheduler, podfleet workers, a private
Redis and the simulator in local mode, which runs each pod's command (the Task SDK's entry
point), so every task really runs and reports its own state to the api-server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from airflow_support import AirflowStack, wait_for
from otlp_receiver import OtlpReceiver, ReceivedSpan

from podfleet.kube.client import KubeClient
from podfleet.simulator.server import RunningSimulator

pytestmark = pytest.mark.airflow


def _states(stack: AirflowStack, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
    return {(ti["task_id"], ti["map_index"]): ti["state"]
            for ti in stack.task_instances(dag_id, run_id)}


def _pods(sim: RunningSimulator, selector: str) -> list[dict[str, Any]]:
    kube = KubeClient(sim.api_client())
    try:
        return kube.list_pods("default", label_selector=selector).items
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

    def archived() -> str | None:
        text = airflow_stack.task_log("pf_pipeline", run_id, "bash", 1)
        return text if "Found logs in podfleet's log archive" in text else None
    # The bash task's pod is deleted (delete policy always): its log comes from the archive.
    assert "podfleet-bash-ran" in wait_for(archived, 60, "the archived log of a finished task")


def test_a_failing_task_fails_although_its_pod_may_exit_cleanly(
        airflow_stack: AirflowStack) -> None:
    run_id = airflow_stack.trigger("pf_failing")
    assert airflow_stack.wait_for_run("pf_failing", run_id) == "failed"
    assert _states(airflow_stack, "pf_failing", run_id) == {("boom", -1): "failed"}


def _pod_of(sim: RunningSimulator, dag_id: str) -> dict[str, Any] | None:
    pods = [p for p in _pods(sim, f"dag_id={dag_id}")
            if (p.get("status") or {}).get("phase") == "Running"]
    return pods[0] if pods else None


def test_pod_override_and_pod_template_file_shape_the_pod(airflow_stack: AirflowStack,
                                                          sim: RunningSimulator) -> None:
    run_id = airflow_stack.trigger("pf_override")
    pod = wait_for(lambda: _pod_of(sim, "pf_override"), 120, "the running pf_override pod")
    meta = pod["metadata"]
    assert meta["labels"]["team"] == "data-eng"             # pod_override
    assert meta["labels"]["from-template"] == "yes"          # pod_template_file
    assert meta["annotations"]["owner"] == "alice"
    # The KubernetesExecutor's identity labels and raw-value annotations.
    assert meta["labels"]["dag_id"] == "pf_override"
    assert meta["labels"]["task_id"] == "configured"
    assert meta["labels"]["try_number"] == "1"
    assert meta["annotations"]["run_id"] == run_id
    assert "kubernetes_executor" not in meta["labels"]
    assert airflow_stack.wait_for_run("pf_override", run_id) == "success"
    xcom = airflow_stack.get(f"/dags/pf_override/dagRuns/{run_id}/taskInstances/configured"
                             "/xcomEntries/return_value")
    assert xcom["value"] == "template-env"                   # the template's container env


@pytest.mark.slow
def test_tasks_choose_their_executor_beside_local_executor(airflow_stack: AirflowStack) -> None:
    run_id = airflow_stack.trigger("pf_mixed")
    assert airflow_stack.wait_for_run("pf_mixed", run_id) == "success"
    local = airflow_stack.get(f"/dags/pf_mixed/dagRuns/{run_id}/taskInstances/local"
                              "/xcomEntries/return_value")
    in_pod = airflow_stack.get(f"/dags/pf_mixed/dagRuns/{run_id}/taskInstances/in_a_pod"
                               "/xcomEntries/return_value")
    assert local["value"] == "local"
    assert in_pod["value"].startswith("pf-mixed-in-a-pod-")   # ran in podfleet's pod
    tis = {ti["task_id"]: ti for ti in airflow_stack.task_instances("pf_mixed", run_id)}
    assert tis["local"]["executor"] == "LocalExecutor"
    assert tis["in_a_pod"]["executor"] == "podfleet"


@pytest.mark.slow
def test_a_task_stuck_in_queued_is_revoked_and_its_pod_deleted(airflow_stack: AirflowStack,
                                                              sim: RunningSimulator) -> None:
    run_id = airflow_stack.trigger("pf_stuck")
    pending = wait_for(lambda: _pods(sim, "dag_id=pf_stuck"), 120, "the unschedulable pod")
    assert pending[0]["status"]["phase"] == "Pending"
    ti = airflow_stack.wait_for_ti_state("pf_stuck", run_id, "never_scheduled", {"failed"},
                                         timeout=120)
    assert ti["try_number"] == 1
    wait_for(lambda: not _pods(sim, "dag_id=pf_stuck"), 60, "the revoked pod to be deleted")


@pytest.mark.slow
def test_a_running_task_log_is_read_from_its_pod_through_the_rest_api(
        airflow_stack: AirflowStack) -> None:
    run_id = airflow_stack.trigger("pf_slow", {"seconds": 20})
    airflow_stack.wait_for_ti_state("pf_slow", run_id, "sleepy", {"running"})

    def working() -> str | None:
        text = airflow_stack.task_log("pf_slow", run_id, "sleepy", 1)
        return text if "still working" in text else None
    text = wait_for(working, 60, "the running task's log")
    assert "Found logs in the pod" in text  # through the executor, not a local file
    assert airflow_stack.wait_for_run("pf_slow", run_id) == "success"


@pytest.mark.slow
def test_a_task_beside_a_sidecar_has_its_log_read_running_and_from_its_kept_pod(
        airflow_stack: AirflowStack) -> None:
    # Given a task whose pod has a sidecar, and whose pod is kept once it ends (it fails)
    run_id = airflow_stack.trigger("pf_sidecar", {"seconds": 15})
    airflow_stack.wait_for_ti_state("pf_sidecar", run_id, "beside_a_sidecar", {"running"})

    def log_with(line: str) -> str | None:
        text = airflow_stack.task_log("pf_sidecar", run_id, "beside_a_sidecar", 1)
        return text if line in text else None
    # When its log is read through the REST API while it runs
    running = wait_for(lambda: log_with("beside a sidecar 0"), 60, "the running task's log")
    # Then it is the task container's, from the pod, with no log server error
    assert "Found logs in the pod" in running
    assert "served logs" not in running and "container name" not in running, running
    # And once it finished, the kept pod's log is read the same way
    airflow_stack.wait_for_run("pf_sidecar", run_id)
    kept = wait_for(lambda: log_with("beside a sidecar 14"), 60, "the finished task's log")
    assert "Found logs in the pod" in kept
    assert "served logs" not in kept and "container name" not in kept, kept


@pytest.mark.slow
def test_a_task_runs_in_the_schedulers_trace_and_podfleets_spans_join_it(
        airflow_stack: AirflowStack) -> None:
    # Given Airflow and podfleet both tracing to one OTLP receiver
    traces: OtlpReceiver = airflow_stack.traces  # type: ignore[attr-defined]
    # When a task runs
    run_id = airflow_stack.trigger("pf_traced")
    assert airflow_stack.wait_for_run("pf_traced", run_id) == "success"
    # Then its pod had the task's trace context as TRACEPARENT ...
    traceparent = airflow_stack.get(f"/dags/pf_traced/dagRuns/{run_id}/taskInstances/traced"
                                    "/xcomEntries/return_value")["value"]
    version, trace_id, parent_id, _flags = traceparent.split("-")
    assert (version, len(trace_id), len(parent_id)) == ("00", 32, 16), traceparent

    def podfleet_span() -> ReceivedSpan | None:
        found = [s for s in traces.spans if s.name == "podfleet.task"
                 and s.attributes.get("podfleet.run_id") == run_id]
        return found[0] if found else None
    # ... and podfleet's span of the try is that context's child, with its phases
    task = wait_for(podfleet_span, 60, "podfleet's span of the try")
    assert (task.trace_id, task.parent_span_id) == (trace_id, parent_id)
    phases = {s.name for s in traces.spans if s.parent_span_id == task.span_id}
    assert phases == {"queued", "enqueued", "pod created", "running"}
    # ... in the trace Airflow's own spans (the scheduler's, the Task SDK's in the pod) are in
    wait_for(lambda: any(s.trace_id == trace_id and s.service != "podfleet"
                         for s in traces.spans), 60, "Airflow's spans in the same trace")


def _started_tries(stack: AirflowStack, run_id: str) -> list[str]:
    marker = stack.markers / f"{run_id}.started"  # type: ignore[attr-defined]
    return marker.read_text().split() if marker.exists() else []


def _podfleet_rows(stack: AirflowStack, dag_id: str, run_id: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(stack.env["PODFLEET_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(
                "SELECT task_id, try_number, launch_id, state FROM task_instances "
                "WHERE dag_id = :d AND run_id = :r ORDER BY try_number"),
                {"d": dag_id, "r": run_id})]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_pod_killed_mid_task_fails_the_try_and_airflow_retries_it(
        airflow_stack: AirflowStack, sim: RunningSimulator) -> None:
    run_id = airflow_stack.trigger("pf_slow", {"seconds": 90})
    wait_for(lambda: _started_tries(airflow_stack, run_id) == ["1"], 120, "try 1 to start")
    pod = wait_for(lambda: _pod_of(sim, "pf_slow"), 30, "the running pod")
    kube = KubeClient(sim.api_client())
    try:
        kube.delete_pod("default", pod["metadata"]["name"])
    finally:
        kube.close()
    assert airflow_stack.wait_for_run("pf_slow", run_id, timeout=180) == "success"
    assert _started_tries(airflow_stack, run_id) == ["1", "2"]
    wait_for(lambda: [(r[1], r[3]) for r in _podfleet_rows(airflow_stack, "pf_slow", run_id)]
             == [(1, "failed"), (2, "success")], 30, "podfleet to record both pods' ends")


def test_a_killed_scheduler_is_replaced_and_its_running_task_adopted_not_rerun(
        airflow_stack: AirflowStack) -> None:
    run_id = airflow_stack.trigger("pf_slow", {"seconds": 25})
    wait_for(lambda: _started_tries(airflow_stack, run_id) == ["1"], 120, "try 1 to start")
    airflow_stack.kill("scheduler")
    airflow_stack.start_airflow("scheduler")
    assert airflow_stack.wait_for_run("pf_slow", run_id, timeout=240) == "success"
    assert _started_tries(airflow_stack, run_id) == ["1"]          # the task ran once
    rows = wait_for(lambda: [r for r in _podfleet_rows(airflow_stack, "pf_slow", run_id)
                             if r[3] == "success"], 30, "podfleet to record the pod's end")
    assert len(_podfleet_rows(airflow_stack, "pf_slow", run_id)) == len(rows) == 1  # one pod


@pytest.mark.slow
def test_cli_status_counts_airflow_states_apart_from_pod_outcomes(
        airflow_stack: AirflowStack) -> None:
    # Given a task that failed in Airflow (its pod may still exit 0)
    run_id = airflow_stack.trigger("pf_failing")
    assert airflow_stack.wait_for_run("pf_failing", run_id) == "failed"
    # When status is asked for
    result = airflow_stack.run("podfleet", "status", "--dag-id", "pf_failing", "--json")
    report = json.loads(result.stdout[result.stdout.index("{"):])
    # Then Airflow's own state of each try is counted, apart from how the pods ended
    tries = report["task_outcomes"]
    assert tries["source"] == "airflow"
    assert tries["by_state"] == {"failed": report["total"]}, report
    assert report["counts"] == "pod outcomes"
    assert set(report["by_state"]) <= {"success", "failed"}, report
    assert any(e["id"].startswith("airflow-") for e in report["executors"]), report
    text = airflow_stack.run("podfleet", "status", "--dag-id", "pf_failing").stdout
    assert f"task tries by airflow state: {report['total']}" in text
    assert f"task tries by pod outcomes: {report['total']}" in text


@pytest.mark.slow
def test_cli_generate_dag_yaml_writes_the_pods_podfleet_would_create(
        airflow_stack: AirflowStack, tmp_path: Path) -> None:
    airflow_stack.wait_for_dag("pf_override")
    airflow_stack.run("podfleet", "generate-dag-yaml", "pf_override", "--output-path",
                      str(tmp_path))
    files = list((tmp_path / "podfleet_yaml_output").glob("*.yml"))
    assert len(files) == 1
    pod = yaml.safe_load(files[0].read_text())
    assert pod["metadata"]["labels"]["team"] == "data-eng"
    assert pod["metadata"]["labels"]["from-template"] == "yes"
    assert pod["spec"]["containers"][0]["args"][:3] == [
        "python", "-m", "airflow.sdk.execution_time.execute_workload"]


@pytest.mark.slow
def test_cli_cleanup_pods_deletes_finished_podfleet_pods_only(
        airflow_stack: AirflowStack, sim: RunningSimulator) -> None:
    kube = KubeClient(sim.api_client())
    managed = {"podfleet.io/managed": "true"}
    try:
        for name, labels in (("left-behind", managed), ("not-ours", {})):
            kube.request("POST", "/api/v1/namespaces/default/pods", body={
                "metadata": {"name": name, "labels": labels},
                "spec": {"restartPolicy": "Never",
                         "containers": [{"name": "base", "image": "busybox",
                                         "command": ["true"]}]}})
        wait_for(lambda: all(
            ((kube.get_pod("default", n) or {}).get("status") or {}).get("phase") == "Succeeded"
            for n in ("left-behind", "not-ours")), 60, "both pods to finish")
        result = airflow_stack.run("podfleet", "cleanup-pods", "--min-completed-minutes", "0")
        assert "deleted" in result.stdout
        names = {p["metadata"]["name"] for p in kube.list_pods("default").items}
        assert "left-behind" not in names and "not-ours" in names
        kube.delete_pod("default", "not-ours")
    finally:
        kube.close()


@pytest.mark.slow
def test_a_pod_that_fails_before_its_task_starts_is_replaced_without_a_retry(
        airflow_stack: AirflowStack) -> None:
    run_id = airflow_stack.trigger("pf_pull")
    assert airflow_stack.wait_for_run("pf_pull", run_id) == "failed"
    [ti] = airflow_stack.task_instances("pf_pull", run_id)
    assert ti["try_number"] == 1                     # no Airflow retry was used up
    # pod_launch_failure_retries = 1: one replacement pod, then the failure is reported.
    replaced = [line for line in airflow_stack.log("scheduler").splitlines()
                if "failed before the task started" in line and "pf_pull" in line]
    assert len(replaced) == 1, replaced
    [row] = _podfleet_rows(airflow_stack, "pf_pull", run_id)
    assert row[3] == "failed"
