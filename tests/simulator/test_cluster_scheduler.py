"""The scheduler's fit rules and its FailedScheduling message (no server needed)."""

from __future__ import annotations

import asyncio

from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.cluster.resources import Requests, pod_requests
from podfleet.simulator.cluster.scheduler import Scheduler, SimNode
from podfleet.simulator.cluster.state import PodRecord
from podfleet.simulator.cluster.timeline import Timeline


def _scheduler(nodes: int = 3, cpu: str = "2", pods: int = 110) -> Scheduler:
    config = ClusterConfig(nodes=nodes, node_cpu=cpu, node_memory="4Gi", node_pods=pods)
    timeline = Timeline(asyncio.new_event_loop())
    scheduler = Scheduler(config, timeline, lambda pod, node: None, lambda pod, msg: None)
    scheduler.add_default_nodes()
    return scheduler


def test_requests_sum_containers_and_default_to_limits() -> None:
    spec = {
        "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "0.5"}}},
        ]
    }

    assert pod_requests(spec) == Requests(cpu_m=750, memory=2**30)


def test_init_container_counts_when_larger_than_the_containers() -> None:
    spec = {
        "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}],
        "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1"}}}],
    }

    assert pod_requests(spec).cpu_m == 1000


def test_message_counts_each_reason_like_the_real_scheduler() -> None:
    scheduler = _scheduler(nodes=3, cpu="2")

    message = scheduler.unschedulable_message(Requests(cpu_m=3000), None)

    assert message == "0/3 nodes are available: 3 Insufficient cpu."


def test_message_lists_several_reasons_sorted() -> None:
    scheduler = _scheduler(nodes=2, cpu="2")
    scheduler.set_node_ready("sim-node-0", False)

    message = scheduler.unschedulable_message(Requests(cpu_m=3000, memory=8 * 2**30), None)

    assert message == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
    )


def test_a_full_node_says_too_many_pods() -> None:
    scheduler = _scheduler(nodes=1, pods=1)
    node = scheduler.nodes["sim-node-0"]
    node.count(PodRecord("uid-1", "default", "p1"))

    assert scheduler.unschedulable_message(Requests(), None) == (
        "0/1 nodes are available: 1 Too many pods."
    )


def test_node_fits_until_its_cpu_is_used() -> None:
    node = SimNode("n", 0, cpu_m=1000, memory=2**30, max_pods=10)
    pod = PodRecord("uid-1", "default", "p1")
    pod.requests = Requests(cpu_m=600)
    node.count(pod)

    assert not node.fits(Requests(cpu_m=600), None)
    assert node.fits(Requests(cpu_m=400), None)


def test_node_selector_must_match_node_labels() -> None:
    node = SimNode("n", 0, cpu_m=1000, memory=2**30, max_pods=10, labels={"zone": "a"})

    assert node.fits(Requests(), {"zone": "a"})
    assert not node.fits(Requests(), {"zone": "b"})
