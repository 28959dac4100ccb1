"""Taints and tolerations, node affinity and cordon, seen through the official client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import fast_simulator, unschedulable_message, wait_for
from kubernetes import client

from podfleet.simulator.cluster.config import NodeConfig
from podfleet.simulator.server import RunningSimulator

NS = "default"
GPU_TAINT = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    # Two declared nodes: "plain" (zone a, size 4) and "gpu" (tainted, zone b, size 8).
    nodes = [
        NodeConfig("plain", labels={"zone": "a", "size": "4"}),
        NodeConfig("gpu", labels={"zone": "b", "size": "8"}, taints=[GPU_TAINT]),
    ]
    with fast_simulator(nodes=0, node_list=nodes) as simulator:
        yield simulator


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox"}], **spec}}


def _node_of(api: client.CoreV1Api, name: str) -> str | None:
    node: str | None = api.read_namespaced_pod(name, NS).spec.node_name
    return node


def _affinity(*expressions: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]}}}


def test_declared_nodes_carry_their_labels_and_taints(api: client.CoreV1Api) -> None:
    node = api.read_node("gpu")

    assert node.metadata.labels["zone"] == "b"
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
        ("dedicated", "gpu", "NoSchedule")]


def test_a_pod_without_a_toleration_stays_off_a_tainted_node(api: client.CoreV1Api) -> None:
    api.create_namespaced_pod(NS, _pod("p", nodeSelector={"zone": "b"}))

    message = wait_for(lambda: unschedulable_message(api, "p"), what="FailedScheduling")

    assert message == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {dedicated: gpu}. preemption: 0/2 nodes are "
        "available: 2 Preemption is not helpful for scheduling.")


def test_a_toleration_lets_a_pod_onto_a_tainted_node(api: client.CoreV1Api) -> None:
    toleration = {"key": "dedicated", "operator": "Equal", "value": "gpu",
                  "effect": "NoSchedule"}
    api.create_namespaced_pod(NS, _pod("p", nodeSelector={"zone": "b"},
                                       tolerations=[toleration]))

    assert wait_for(lambda: _node_of(api, "p"), what="binding") == "gpu"


@pytest.mark.parametrize(("expression", "node"), [
    ({"key": "zone", "operator": "In", "values": ["a"]}, "plain"),
    ({"key": "zone", "operator": "NotIn", "values": ["b"]}, "plain"),
    ({"key": "size", "operator": "Lt", "values": ["5"]}, "plain"),
    ({"key": "missing", "operator": "DoesNotExist"}, "plain"),
])
def test_required_node_affinity_picks_the_matching_node(
    api: client.CoreV1Api, expression: dict[str, Any], node: str
) -> None:
    api.create_namespaced_pod(NS, _pod("p", affinity=_affinity(expression)))

    assert wait_for(lambda: _node_of(api, "p"), what="binding") == node


def test_affinity_that_matches_no_node_keeps_the_pod_pending(api: client.CoreV1Api) -> None:
    api.create_namespaced_pod(NS, _pod("p", affinity=_affinity(
        {"key": "size", "operator": "Gt", "values": ["100"]})))

    message = wait_for(lambda: unschedulable_message(api, "p"), what="FailedScheduling")

    assert message.startswith("0/2 nodes are available: 1 node(s) didn't match Pod's node "
                              "affinity/selector, 1 node(s) had untolerated taint")


def test_a_cordoned_node_takes_no_new_pods_until_uncordoned(api: client.CoreV1Api) -> None:
    api.patch_node("plain", {"spec": {"unschedulable": True}})
    api.create_namespaced_pod(NS, _pod("p"))
    message = wait_for(lambda: unschedulable_message(api, "p"), what="FailedScheduling")

    api.patch_node("plain", {"spec": {"unschedulable": False}})

    assert message.startswith("0/2 nodes are available: 1 node(s) had untolerated taint "
                              "{dedicated: gpu}, 1 node(s) were unschedulable.")
    assert wait_for(lambda: _node_of(api, "p"), what="binding") == "plain"


def test_a_no_execute_taint_evicts_running_pods_that_do_not_tolerate_it(
    api: client.CoreV1Api,
) -> None:
    kept = _pod("p")
    kept["metadata"]["finalizers"] = ["test.podfleet.io/keep"]  # stays, deleting, to be read
    api.create_namespaced_pod(NS, kept)
    wait_for(lambda: api.read_namespaced_pod("p", NS).status.phase == "Running", what="Running")

    api.patch_node("plain", {"spec": {"taints": [
        {"key": "maintenance", "value": "now", "effect": "NoExecute"}]}})

    pod = wait_for(lambda: api.read_namespaced_pod("p", NS).metadata.deletion_timestamp and
                   api.read_namespaced_pod("p", NS), what="the pod to be deleted")
    condition = next(c for c in pod.status.conditions if c.type == "DisruptionTarget")
    assert (condition.status, condition.reason) == ("True", "DeletionByTaintManager")
    assert condition.message == "Taint manager: deleting due to NoExecute taint"
