"""The cluster's own disruptions, made as an operator or the scheduler makes them, relaunch a
podfleet task's try without spending its retry: a real ``kubectl drain``, preemption by a
higher-priority pod, and a ``NoExecute`` taint.

Real ``podfleet worker`` processes, Redis, PostgreSQL and, per test, a small simulator (three
nodes with room for two pods each) over HTTP, at default settings (the default disruption
budget and delete policy). Nothing is injected: the simulator's eviction API, scheduler and
taint manager mark and delete the pods. A watch opened before each test acts records every
pod change, so a try that ever had two live pods at once is caught.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from pipeline_support import COMMAND, Pipeline, sim_config, task_key
from pod_history import PodHistory
from prometheus_client import REGISTRY

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.simulator.cluster import fate
from podfleet.simulator.server import RunningSimulator, start_simulator

pytestmark = pytest.mark.timeout(240)

NODES = 3
PODS_PER_NODE = 2
# Long enough that every pod is still running when the disruption comes, on a loaded machine.
RUN_SECONDS = "5"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    """A simulator of its own (the test drains, taints or fills its nodes), in its own
    process, with the pipeline tests' latencies."""
    config = sim_config()
    small = dataclasses.replace(config, cluster=dataclasses.replace(
        config.cluster, nodes=NODES, node_pods=PODS_PER_NODE))
    with start_simulator(small, mode="process") as simulator:
        yield simulator


@pytest.fixture
def history(sim: RunningSimulator, namespace: str) -> Iterator[PodHistory]:
    recorder = PodHistory(sim, namespace).start()
    yield recorder
    recorder.stop()


def _disruptions(reason: str) -> float:
    return REGISTRY.get_sample_value("podfleet_pod_disruptions_total",
                                     {"reason": reason}) or 0.0


def _start_running(pipeline: Pipeline, count: int,
                   **executor_config: Any) -> tuple[Executor, list[TaskKey]]:
    """``count`` tasks running for RUN_SECONDS at the default delete policy, all Running."""
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker()
    executor = pipeline.started_executor()
    keys = [task_key(n) for n in range(count)]
    executor.submit_many([TaskSubmission(key, COMMAND, executor_config={
        "annotations": {fate.DURATION: RUN_SECONDS}, **executor_config}) for key in keys])
    pipeline.run_until(executor, lambda: all(
        row.task_state is TaskState.RUNNING for row in pipeline.rows()) and len(
        pipeline.rows()) == count, 60, f"{count} tasks to run")
    return executor, keys


def _nodes_of(pipeline: Pipeline) -> dict[TaskKey, str]:
    """The node each task's current pod is bound to."""
    pods = {pod["metadata"]["name"]: pod for pod in pipeline.pods()}
    return {row.key: pods[row.pod_name]["spec"]["nodeName"] for row in pipeline.rows()
            if row.pod_name in pods}


def _busiest(nodes: dict[TaskKey, str]) -> str:
    return Counter(nodes.values()).most_common(1)[0][0]


def _kubectl(pipeline: Pipeline, executor: Executor, *args: str) -> str:
    """Run the real kubectl on the simulator's kubeconfig while the scheduler loop goes on;
    its output, once it succeeded."""
    command = ["kubectl", "--kubeconfig", str(pipeline.fleet.kubeconfig), *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        pipeline.run_until(executor, lambda: process.poll() is not None, 90,
                           f"kubectl {' '.join(args)}")
        out, err = process.communicate()
    assert process.returncode == 0, err
    return out


def _assert_relaunched_without_spending_retries(
        pipeline: Pipeline, history: PodHistory, keys: list[TaskKey],
        disrupted: dict[TaskKey, list[str]], off: set[str]) -> None:
    """Every key succeeded; a disrupted one (key -> its disrupted launches) ran its same try
    again under a new launch, last on none of the nodes ``off``; the others ran once; no try
    ever had two live pods; the scheduler heard one success per try and nothing else."""
    rows = pipeline.rows_by_key()
    for key in keys:
        row = rows[key]
        assert (row.task_state, row.try_number) == (TaskState.SUCCESS, key.try_number), key
        times = len(disrupted.get(key, ()))
        assert (row.attempt, row.disruptions) == (1 + times, times), key
        if times:
            assert row.launch_id not in disrupted[key], key
            ran_on = history.nodes_of_launch(row.launch_id)
            assert ran_on and not ran_on & off, key
    assert pipeline.terminal_reports() == Counter({(key, TaskState.SUCCESS): 1 for key in keys})
    assert history.error is None
    assert history.most_live_pods_of_one_try() == 1


def _launches_on(pipeline: Pipeline, node: str) -> dict[TaskKey, str]:
    """The current launch of each task whose pod is bound to ``node``."""
    nodes = _nodes_of(pipeline)
    return {row.key: row.launch_id for row in pipeline.rows() if nodes.get(row.key) == node}


def _drain(pipeline: Pipeline, executor: Executor, node: str) -> None:
    out = _kubectl(pipeline, executor, "drain", node, "--ignore-daemonsets",
                   "--delete-emptydir-data", "--force", "--timeout=60s")
    assert f"node/{node} drained" in out


def test_kubectl_drain_relaunches_the_nodes_tasks_elsewhere_without_spending_retries(
        pipeline: Pipeline, history: PodHistory) -> None:
    # Given three tasks running on a three-node cluster
    executor, keys = _start_running(pipeline, 3)
    node = _busiest(_nodes_of(pipeline))
    launches = _launches_on(pipeline, node)
    counted_before = _disruptions("EvictionByEvictionAPI")
    # When an operator drains the node some of them run on
    _drain(pipeline, executor, node)
    # Then those tasks ran their same try again on another node, without spending a retry
    pipeline.run_until_finished(executor, keys, timeout=90)
    _assert_relaunched_without_spending_retries(
        pipeline, history, keys, {key: [launch] for key, launch in launches.items()}, {node})
    # ... and each eviction was counted as a disruption
    assert _disruptions("EvictionByEvictionAPI") == counted_before + len(launches)


@pytest.mark.slow
def test_draining_two_nodes_in_turn_relaunches_a_try_as_often_as_it_is_evicted(
        pipeline: Pipeline, history: PodHistory) -> None:
    # Given four tasks running on a three-node cluster, and one node drained
    executor, keys = _start_running(pipeline, 4)
    first = _busiest(_nodes_of(pipeline))
    disrupted: dict[TaskKey, list[str]] = {}
    for key, launch in _launches_on(pipeline, first).items():
        disrupted.setdefault(key, []).append(launch)
    _drain(pipeline, executor, first)
    pipeline.run_until(executor, lambda: all(
        row.task_state is TaskState.RUNNING and row.attempt == 1 + len(disrupted.get(row.key, ()))
        for row in pipeline.rows()), 60, "the evicted tasks to run again")
    # When a second node is drained, while the last one has no room left
    second = _busiest({k: n for k, n in _nodes_of(pipeline).items() if n != first})
    for key, launch in _launches_on(pipeline, second).items():
        disrupted.setdefault(key, []).append(launch)
    _drain(pipeline, executor, second)
    # Then every try evicted (once or twice) ran again on the last node, once it had room,
    # and succeeded, each eviction forgiven
    pipeline.run_until_finished(executor, keys, timeout=120)
    _assert_relaunched_without_spending_retries(pipeline, history, keys, disrupted,
                                                {first, second})


@pytest.fixture
def priority_classes(sim: RunningSimulator) -> None:
    api_client = sim.api_client()
    try:
        scheduling = client.SchedulingV1Api(api_client)
        scheduling.create_priority_class({"metadata": {"name": "low"}, "value": 100})
        scheduling.create_priority_class({"metadata": {"name": "high"}, "value": 1000})
    finally:
        api_client.close()


def _high_priority_pod(pipeline: Pipeline) -> str:
    """Create a plain (not podfleet's) pod of class ``high`` that runs briefly; its name."""
    api_client = pipeline.sim.api_client()
    try:
        client.CoreV1Api(api_client).create_namespaced_pod(pipeline.namespace, {
            "metadata": {"name": "urgent", "annotations": {fate.DURATION: "1"}},
            "spec": {"restartPolicy": "Never", "priorityClassName": "high",
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox"}]}})
    finally:
        api_client.close()
    return "urgent"


@pytest.mark.usefixtures("priority_classes")
def test_a_preempted_task_is_relaunched_without_spending_its_retry_and_runs_once_room_frees(
        pipeline: Pipeline, history: PodHistory) -> None:
    # Given a cluster full of running tasks of PriorityClass low
    executor, keys = _start_running(pipeline, NODES * PODS_PER_NODE,
                                    priority_class_name="low")
    launches = {row.key: row.launch_id for row in pipeline.rows()}
    counted_before = _disruptions("PreemptionByScheduler")
    # When a pod of class high arrives, which fits only by preempting one of them
    urgent = _high_priority_pod(pipeline)
    pipeline.run_until(executor, lambda: any(row.disruptions for row in pipeline.rows()), 60,
                       "a task to be preempted")
    # Then the high pod runs, and the preempted task runs its same try again once room frees
    pipeline.run_until_finished(executor, keys, timeout=90)
    preempted = {row.key: launches[row.key] for row in pipeline.rows() if row.disruptions}
    assert len(preempted) == 1
    _assert_relaunched_without_spending_retries(
        pipeline, history, keys, {key: [launch] for key, launch in preempted.items()}, set())
    urgent_pod = pipeline.kube.get_pod(pipeline.namespace, urgent)
    assert urgent_pod is not None and urgent_pod["status"]["phase"] == "Succeeded"
    # ... and the preemption was counted as a disruption
    assert _disruptions("PreemptionByScheduler") == counted_before + 1


@pytest.mark.slow
def test_a_noexecute_taint_relaunches_the_nodes_tasks_elsewhere_without_spending_retries(
        pipeline: Pipeline, history: PodHistory) -> None:
    # Given three tasks running on a three-node cluster
    executor, keys = _start_running(pipeline, 3)
    node = _busiest(_nodes_of(pipeline))
    launches = _launches_on(pipeline, node)
    counted_before = _disruptions("DeletionByTaintManager")
    # When the node some of them run on is tainted NoExecute
    _kubectl(pipeline, executor, "taint", "nodes", node, "maintenance=now:NoExecute")
    # Then the taint manager evicted them, and they ran their same try again elsewhere
    pipeline.run_until_finished(executor, keys, timeout=90)
    _assert_relaunched_without_spending_retries(
        pipeline, history, keys, {key: [launch] for key, launch in launches.items()}, {node})
    assert _disruptions("DeletionByTaintManager") == counted_before + len(launches)
