"""Nodes, capacity and the scheduler, seen through the official client and the admin API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import fast_simulator, pod_body, unique, wait_for
from kubernetes import client

from podfleet.simulator.cluster import fate
from podfleet.simulator.server import RunningSimulator

NS = "default"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    # One small node: 1 cpu, 2 pods, so capacity runs out on purpose.
    with fast_simulator(nodes=1, node_cpu="1", node_pods=2) as simulator:
        yield simulator


def _scheduled_condition(api: client.CoreV1Api, name: str) -> Any:
    conditions = api.read_namespaced_pod(name, NS).status.conditions or []
    return next((c for c in conditions if c.type == "PodScheduled"), None)


def _unschedulable(api: client.CoreV1Api, name: str) -> Any:
    condition = _scheduled_condition(api, name)
    return condition if condition is not None and condition.status == "False" else None


def test_nodes_are_listed_with_capacity(api: client.CoreV1Api) -> None:
    nodes = api.list_node().items

    assert [n.metadata.name for n in nodes] == ["sim-node-0"]
    assert nodes[0].status.allocatable["pods"] == "2"
    ready = {c.type: c.status for c in nodes[0].status.conditions}["Ready"]
    assert ready == "True"


def test_a_pod_too_big_for_every_node_is_unschedulable(api: client.CoreV1Api) -> None:
    name = unique("big")
    api.create_namespaced_pod(NS, pod_body(name, cpu="2"))

    condition = wait_for(lambda: _unschedulable(api, name), what="Unschedulable")

    assert condition.reason == "Unschedulable"
    assert condition.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod.")
    pod = api.read_namespaced_pod(name, NS)
    assert pod.status.phase == "Pending" and pod.spec.node_name is None


def test_a_waiting_pod_is_bound_when_capacity_frees(api: client.CoreV1Api) -> None:
    first, second = unique("first"), unique("second")
    api.create_namespaced_pod(NS, pod_body(first, {fate.DURATION: "0.3"}, cpu="800m"))
    wait_for(lambda: api.read_namespaced_pod(first, NS).spec.node_name, what="first bound")
    api.create_namespaced_pod(NS, pod_body(second, cpu="800m"))
    wait_for(lambda: _unschedulable(api, second), what="second Unschedulable")

    pod = wait_for(lambda: (p := api.read_namespaced_pod(second, NS)).status.phase
                   == "Succeeded" and p, what="second to run and succeed")

    assert pod.spec.node_name == "sim-node-0"
    assert api.read_namespaced_pod(first, NS).status.phase == "Succeeded"


def test_too_many_pods_waits_for_a_free_slot(
    api: client.CoreV1Api, sim: RunningSimulator
) -> None:
    names = [unique("slot") for _ in range(3)]
    for name in names[:2]:
        api.create_namespaced_pod(NS, pod_body(name, {fate.DURATION: "30"}))
    api.create_namespaced_pod(NS, pod_body(names[2]))

    condition = wait_for(lambda: _unschedulable(api, names[2]), what="Unschedulable")
    assert condition.message == (
        "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: "
        "1 No preemption victims found for incoming pod.")
    assert sim.admin.stats().pods.unschedulable == 1

    api.delete_namespaced_pod(names[0], NS, grace_period_seconds=0)
    wait_for(lambda: api.read_namespaced_pod(names[2], NS).spec.node_name, what="bound")


def test_an_added_node_takes_waiting_pods(api: client.CoreV1Api, sim: RunningSimulator) -> None:
    name = unique("needs-room")
    api.create_namespaced_pod(NS, pod_body(name, cpu="3"))
    wait_for(lambda: _unschedulable(api, name), what="Unschedulable")

    sim.admin.add_node("big-node", cpu="8")

    node = wait_for(lambda: api.read_namespaced_pod(name, NS).spec.node_name, what="bound")
    assert node == "big-node"
    assert "big-node" in [n.metadata.name for n in api.list_node().items]


def test_node_selector_picks_the_matching_node(
    api: client.CoreV1Api, sim: RunningSimulator
) -> None:
    sim.admin.add_node("gpu-node", labels={"accelerator": "gpu"})
    name = unique("selective")

    api.create_namespaced_pod(NS, pod_body(name, node_selector={"accelerator": "gpu"}))

    assert wait_for(lambda: api.read_namespaced_pod(name, NS).spec.node_name) == "gpu-node"


def test_a_pod_created_with_node_name_skips_the_scheduler(api: client.CoreV1Api) -> None:
    name = unique("pinned")
    body = pod_body(name)
    body["spec"]["nodeName"] = "sim-node-0"

    api.create_namespaced_pod(NS, body)

    pod = wait_for(lambda: _ended_pod(api, name), what="ended")
    assert pod.status.phase == "Succeeded" and pod.status.host_ip


def _ended_pod(api: client.CoreV1Api, name: str) -> Any:
    pod = api.read_namespaced_pod(name, NS)
    return pod if pod.status.phase in ("Succeeded", "Failed") else None
