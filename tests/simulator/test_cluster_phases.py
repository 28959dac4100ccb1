"""The simulated kubelet drives pods through their phases, seen through the official client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cluster_support import fast_simulator, pod_body, unique, wait_for
from kubernetes import client, watch

from podfleet.simulator.cluster import fate
from podfleet.simulator.server import RunningSimulator

NS = "default"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with fast_simulator() as simulator:
        yield simulator


def _phase_is(api: client.CoreV1Api, name: str, *phases: str) -> Any:
    pod = api.read_namespaced_pod(name, NS)
    return pod if pod.status.phase in phases else None


def _ended(api: client.CoreV1Api, name: str) -> Any:
    return wait_for(lambda: _phase_is(api, name, "Succeeded", "Failed"), what=f"{name} to end")


def test_a_pod_without_annotations_succeeds_with_a_completed_container(
    api: client.CoreV1Api,
) -> None:
    name = unique("ok")
    api.create_namespaced_pod(NS, pod_body(name))

    pod = _ended(api, name)

    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.exit_code) == ("Completed", 0)
    assert terminated.started_at is not None and terminated.finished_at is not None
    assert pod.spec.node_name.startswith("sim-node-")
    assert pod.status.pod_ip and pod.status.host_ip and pod.status.start_time
    ready = {c.type: c for c in pod.status.conditions}["Ready"]
    assert (ready.status, ready.reason) == ("False", "PodCompleted")


def test_a_running_pod_is_ready_with_a_running_container(api: client.CoreV1Api) -> None:
    name = unique("running")
    api.create_namespaced_pod(NS, pod_body(name, {fate.DURATION: "30"}))

    pod = wait_for(lambda: _phase_is(api, name, "Running"), what="Running")

    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    status = pod.status.container_statuses[0]
    assert status.ready and status.started and status.state.running.started_at
    assert status.container_id.startswith("containerd://")
    assert status.image == "docker.io/library/busybox:1.36"
    assert pod.status.pod_ip and pod.status.start_time
    api.delete_namespaced_pod(name, NS, grace_period_seconds=0)


def test_watch_sees_pending_creating_running_succeeded_in_order(
    api: client.CoreV1Api,
) -> None:
    name = unique("watched")
    created = api.create_namespaced_pod(NS, pod_body(name))
    seen: list[tuple[str, str]] = []

    for event in watch.Watch().stream(
        api.list_namespaced_pod, NS, field_selector=f"metadata.name={name}",
        resource_version=created.metadata.resource_version, timeout_seconds=5,
    ):
        pod = event["object"]
        statuses = pod.status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        seen.append((pod.status.phase, waiting.reason if waiting else ""))
        if pod.status.phase == "Succeeded":
            break

    assert seen == [("Pending", "ContainerCreating"), ("Running", ""), ("Succeeded", "")]


def test_exit_code_annotation_fails_the_pod_with_error(api: client.CoreV1Api) -> None:
    name = unique("exit")
    api.create_namespaced_pod(NS, pod_body(name, {fate.EXIT_CODE: "3"}))

    pod = _ended(api, name)

    terminated = pod.status.container_statuses[0].state.terminated
    assert (pod.status.phase, terminated.reason, terminated.exit_code) == ("Failed", "Error", 3)


def test_oom_annotation_ends_in_oomkilled_137(api: client.CoreV1Api) -> None:
    name = unique("oom")
    api.create_namespaced_pod(NS, pod_body(name, {fate.OOM: "true"}))

    pod = _ended(api, name)

    terminated = pod.status.container_statuses[0].state.terminated
    assert (pod.status.phase, terminated.reason, terminated.exit_code) == (
        "Failed", "OOMKilled", 137)


def test_message_annotation_is_the_terminated_message(api: client.CoreV1Api) -> None:
    name = unique("msg")
    api.create_namespaced_pod(NS, pod_body(name, {fate.MESSAGE: "all done"}))

    pod = _ended(api, name)

    assert pod.status.container_statuses[0].state.terminated.message == "all done"


def _waiting_reason(api: client.CoreV1Api, name: str) -> str:
    statuses = api.read_namespaced_pod(name, NS).status.container_statuses or []
    waiting = statuses[0].state.waiting if statuses else None
    return waiting.reason if waiting else ""


def test_image_pull_error_stays_pending_and_backs_off(api: client.CoreV1Api) -> None:
    name = unique("pull")
    api.create_namespaced_pod(NS, pod_body(name, {fate.IMAGE_PULL_ERROR: "true"}))

    wait_for(lambda: _waiting_reason(api, name) == "ImagePullBackOff", what="ImagePullBackOff")

    pod = api.read_namespaced_pod(name, NS)
    assert pod.status.phase == "Pending"
    assert "busybox:1.36" in pod.status.container_statuses[0].state.waiting.message


def test_image_pull_error_passes_through_err_image_pull(api: client.CoreV1Api) -> None:
    name = unique("pull-first")
    created = api.create_namespaced_pod(NS, pod_body(
        name, {fate.IMAGE_PULL_ERROR: "true", fate.START_DELAY: "0"}))
    reasons = []

    # From the create's version: every later state is delivered, however fast they came.
    for event in watch.Watch().stream(api.list_namespaced_pod, NS,
                                      field_selector=f"metadata.name={name}",
                                      resource_version=created.metadata.resource_version,
                                      timeout_seconds=5):
        statuses = event["object"].status.container_statuses or []
        if statuses and statuses[0].state.waiting:
            reasons.append(statuses[0].state.waiting.reason)
        if reasons and reasons[-1] == "ImagePullBackOff":
            break

    assert reasons == ["ContainerCreating", "ErrImagePull", "ImagePullBackOff"]


def test_another_waiting_reason_can_be_asked_for(api: client.CoreV1Api) -> None:
    name = unique("config")
    api.create_namespaced_pod(NS, pod_body(name, {fate.IMAGE_PULL_ERROR: "InvalidImageName"}))

    wait_for(lambda: _waiting_reason(api, name) == "InvalidImageName", what="InvalidImageName")

    assert api.read_namespaced_pod(name, NS).status.phase == "Pending"


def test_start_delay_keeps_the_pod_in_container_creating(api: client.CoreV1Api) -> None:
    name = unique("slow-start")
    api.create_namespaced_pod(NS, pod_body(name, {fate.START_DELAY: "30"}))

    wait_for(lambda: _waiting_reason(api, name) == "ContainerCreating", what="ContainerCreating")

    pod = api.read_namespaced_pod(name, NS)
    assert pod.status.phase == "Pending" and pod.spec.node_name
    assert pod.status.pod_ip is None
    api.delete_namespaced_pod(name, NS, grace_period_seconds=0)


def test_deleting_a_running_pod_stops_it_then_removes_it(api: client.CoreV1Api) -> None:
    name = unique("deleted")
    api.create_namespaced_pod(NS, pod_body(name, {fate.DURATION: "30"}, grace_s=5))
    wait_for(lambda: _phase_is(api, name, "Running"), what="Running")
    rv = api.read_namespaced_pod(name, NS).metadata.resource_version
    events = []

    api.delete_namespaced_pod(name, NS)
    for event in watch.Watch().stream(api.list_namespaced_pod, NS, resource_version=rv,
                                      field_selector=f"metadata.name={name}", timeout_seconds=5):
        events.append(event)
        if event["type"] == "DELETED":
            break

    assert events[0]["object"].metadata.deletion_timestamp is not None
    last = events[-1]["object"]
    assert events[-1]["type"] == "DELETED"
    assert last.status.container_statuses[0].state.terminated.exit_code == 143


def test_a_pod_with_restart_policy_always_keeps_running(api: client.CoreV1Api) -> None:
    name = unique("service")
    api.create_namespaced_pod(NS, pod_body(name, restart_policy="Always"))
    wait_for(lambda: _phase_is(api, name, "Running"), what="Running")

    # Well past the default run time, it still runs.
    sibling = unique("sibling")
    api.create_namespaced_pod(NS, pod_body(sibling))
    _ended(api, sibling)

    assert api.read_namespaced_pod(name, NS).status.phase == "Running"
    api.delete_namespaced_pod(name, NS, grace_period_seconds=0)


def test_a_failing_always_pod_restarts_and_counts_restarts(api: client.CoreV1Api) -> None:
    name = unique("crashy")
    api.create_namespaced_pod(NS, pod_body(
        name, {fate.DURATION: "0.01", fate.EXIT_CODE: "1"}, restart_policy="Always"))

    def restarted() -> Any:
        statuses = api.read_namespaced_pod(name, NS).status.container_statuses or []
        return statuses[0] if statuses and statuses[0].restart_count >= 1 else None

    status = wait_for(restarted, what="a restart")
    assert status.last_state.terminated.exit_code == 1
    assert api.read_namespaced_pod(name, NS).status.phase == "Running"
    api.delete_namespaced_pod(name, NS, grace_period_seconds=0)


def test_a_deleted_pod_with_a_finalizer_stays_until_the_finalizer_is_removed(
    api: client.CoreV1Api,
) -> None:
    name = unique("finalized")
    body = pod_body(name, {fate.DURATION: "30"}, grace_s=1)
    body["metadata"]["finalizers"] = ["example.com/hold"]
    api.create_namespaced_pod(NS, body)
    wait_for(lambda: _phase_is(api, name, "Running"), what="Running")

    api.delete_namespaced_pod(name, NS)
    stopped = wait_for(lambda: _phase_is(api, name, "Failed"), what="containers stopped")

    assert stopped.metadata.deletion_timestamp is not None
    api.patch_namespaced_pod(name, NS, {"metadata": {"finalizers": None}})
    wait_for(lambda: name not in [p.metadata.name for p in api.list_namespaced_pod(NS).items],
             what="the pod to be removed")
