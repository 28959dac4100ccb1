"""Priority and preemption, evictions (pods/eviction, kubectl drain) and activeDeadlineSeconds."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import fast_simulator, unschedulable_message, wait_for
from kubernetes import client
from kubernetes.client.rest import ApiException

from podfleet.simulator.server import RunningSimulator

NS = "default"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    # One node with room for one 1-cpu pod, so a second must preempt or wait.
    with fast_simulator(nodes=1, node_cpu="1") as simulator:
        yield simulator


@pytest.fixture
def classes(api_client: client.ApiClient) -> None:
    scheduling = client.SchedulingV1Api(api_client)
    scheduling.create_priority_class({"metadata": {"name": "high"}, "value": 1000})
    scheduling.create_priority_class({"metadata": {"name": "high-never"}, "value": 1000,
                                      "preemptionPolicy": "Never"})


def _pod(name: str, cpu: str = "1", class_name: str | None = None,
         finalizer: bool = False, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "busybox",
                                 "resources": {"requests": {"cpu": cpu}}}], **spec}}
    if class_name:
        body["spec"]["priorityClassName"] = class_name
    if finalizer:  # the pod stays, deleting, so the test can read what was done to it
        body["metadata"]["finalizers"] = ["test.podfleet.io/keep"]
    return body


def _running(api: client.CoreV1Api, name: str) -> bool:
    return bool(api.read_namespaced_pod(name, NS).status.phase == "Running")


def _disruption(pod: Any) -> Any:
    return next((c for c in pod.status.conditions or () if c.type == "DisruptionTarget"), None)


def test_a_pod_that_fits_nowhere_says_so_with_preemptions_part(api: client.CoreV1Api) -> None:
    api.create_namespaced_pod(NS, _pod("big", cpu="2"))

    message = wait_for(lambda: unschedulable_message(api, "big"), what="FailedScheduling")

    assert message == ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                       "available: 1 No preemption victims found for incoming pod.")


@pytest.mark.usefixtures("classes")
def test_a_higher_priority_pod_preempts_a_lower_one(api: client.CoreV1Api) -> None:
    api.create_namespaced_pod(NS, _pod("low", finalizer=True))
    wait_for(lambda: _running(api, "low"), what="low Running")

    api.create_namespaced_pod(NS, _pod("high", class_name="high"))

    victim = wait_for(lambda: _disruption(api.read_namespaced_pod("low", NS)) and
                      api.read_namespaced_pod("low", NS), what="the victim")
    assert victim.metadata.deletion_timestamp is not None
    assert _disruption(victim).reason == "PreemptionByScheduler"
    api.patch_namespaced_pod("low", NS, {"metadata": {"finalizers": None}})
    wait_for(lambda: _running(api, "high"), what="high Running")
    events = api.list_namespaced_event(NS, field_selector="involvedObject.name=low").items
    high_uid = api.read_namespaced_pod("high", NS).metadata.uid
    assert any(e.reason == "Preempted" and e.message == f"Preempted by pod {high_uid} on node "
               "sim-node-0" for e in events)


@pytest.mark.usefixtures("classes")
def test_preemption_policy_never_waits_instead(api: client.CoreV1Api) -> None:
    api.create_namespaced_pod(NS, _pod("low"))
    wait_for(lambda: _running(api, "low"), what="low Running")

    api.create_namespaced_pod(NS, _pod("polite", class_name="high-never"))

    message = wait_for(lambda: unschedulable_message(api, "polite"), what="FailedScheduling")
    assert message == ("0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible "
                       "due to preemptionPolicy=Never.")
    assert _running(api, "low")


def test_the_eviction_api_marks_the_pod_and_deletes_it_gracefully(api: client.CoreV1Api) -> None:
    api.create_namespaced_pod(NS, _pod("p", finalizer=True))
    wait_for(lambda: _running(api, "p"), what="Running")

    api.create_namespaced_pod_eviction("p", NS, {"apiVersion": "policy/v1", "kind": "Eviction",
                                                 "metadata": {"name": "p", "namespace": NS}})

    pod = api.read_namespaced_pod("p", NS)
    assert pod.metadata.deletion_timestamp is not None
    assert _disruption(pod).reason == "EvictionByEvictionAPI"


def test_evicting_a_missing_pod_is_not_found(api: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        api.create_namespaced_pod_eviction("ghost", NS, {"metadata": {"name": "ghost"}})

    assert caught.value.status == 404


def test_kubectl_drain_cordons_the_node_and_evicts_its_pods(
    sim: RunningSimulator, api: client.CoreV1Api, tmp_path: Path
) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    api.create_namespaced_pod(NS, _pod("p", cpu="100m"))
    wait_for(lambda: _running(api, "p"), what="Running")
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")

    result = subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "drain", "sim-node-0", "--force",
         "--timeout=30s"], capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
    assert "pod/p evicted" in result.stdout
    assert api.read_node("sim-node-0").spec.unschedulable is True
    assert [p.metadata.name for p in api.list_namespaced_pod(NS).items] == []


def test_active_deadline_seconds_fails_the_pod(api: client.CoreV1Api) -> None:
    api.create_namespaced_pod(NS, _pod("p", activeDeadlineSeconds=1))

    pod = wait_for(lambda: api.read_namespaced_pod("p", NS).status.phase == "Failed" and
                   api.read_namespaced_pod("p", NS), what="Failed")

    assert pod.status.reason == "DeadlineExceeded"
    assert pod.status.message == "Pod was active on the node longer than the specified deadline"
