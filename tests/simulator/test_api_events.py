"""Events: what the scheduler and kubelet record, served as core/v1 Events (list, watch,
field selectors), as kubectl, the official client and kubernetes_asyncio read them."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cluster_support import asyncio_core_api, fast_simulator, pod_body
from kubernetes import client, watch

from podfleet.simulator.cluster.fate import DURATION, EXIT_CODE, IMAGE_PULL_ERROR
from podfleet.simulator.server import ThreadSimulator


def _pod(name: str, image: str | None = None, **spec: Any) -> dict[str, Any]:
    # A tag of its own makes the node pull it (no "already present on machine")
    container = {"name": "main", "image": image or f"busybox:t{uuid.uuid4().hex[:8]}"}
    return {"metadata": {"name": name, "annotations": spec.pop("annotations", {})},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": 1, **spec}}


def _events(core: client.CoreV1Api, namespace: str, selector: str = "") -> list[Any]:
    items = core.list_namespaced_event(namespace, field_selector=selector or None).items
    return sorted(items, key=lambda e: e.metadata.name)


def _wait(probe: Callable[[], Any], what: str, timeout_s: float = 10.0) -> Any:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _reasons_once(core: client.CoreV1Api, namespace: str, *reasons: str) -> list[Any]:
    """Wait until events with all `reasons` exist; return the namespace's events."""
    def probe() -> list[Any] | None:
        events = _events(core, namespace)
        return events if set(reasons) <= {e.reason for e in events} else None

    return list(_wait(probe, f"events {reasons}"))


def test_a_started_pod_has_the_events_of_its_scheduling_pull_and_start(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("web"))

    events = _reasons_once(core, namespace, "Started")

    assert [e.reason for e in events] == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]
    scheduled = events[0]
    node = core.read_namespaced_pod("web", namespace).spec.node_name
    assert scheduled.message == f"Successfully assigned {namespace}/web to {node}"
    assert scheduled.reporting_component == "default-scheduler"
    assert (scheduled.type, scheduled.action) == ("Normal", "Binding")
    started = events[-1]
    assert started.message == "Started container main"
    assert started.source.component == "kubelet" and started.source.host == node
    assert started.involved_object.field_path == "spec.containers{main}"
    assert started.involved_object.kind == "Pod"
    assert started.count == 1


def test_a_second_pod_of_the_same_image_on_a_node_finds_it_already_present(
    core: client.CoreV1Api, namespace: str
) -> None:
    image = f"busybox:t{uuid.uuid4().hex[:8]}"  # IfNotPresent: a tag other than latest
    node = "sim-node-0"
    core.create_namespaced_pod(namespace, _pod("first", image, nodeName=node))
    _reasons_once(core, namespace, "Started")
    core.create_namespaced_pod(namespace, _pod("second", image, nodeName=node))

    def pulled() -> Any:
        found = _events(core, namespace, "involvedObject.name=second,reason=Pulled")
        return found[0] if found else None

    assert _wait(pulled, "second's Pulled").message == (
        f'Container image "{image}" already present on machine')


def test_events_are_selected_by_involved_object_reason_and_type(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("a"))
    core.create_namespaced_pod(namespace, _pod("b"))
    _wait(lambda: len(_events(core, namespace, "reason=Started")) == 2, "both started")
    uid = core.read_namespaced_pod("a", namespace).metadata.uid

    by_name = _events(core, namespace, "involvedObject.name=a,involvedObject.kind=Pod")
    by_uid = _events(core, namespace, f"involvedObject.uid={uid},reason=Created")
    not_normal = _events(core, namespace, "type!=Normal")

    assert {e.involved_object.name for e in by_name} == {"a"} and len(by_name) == 5
    assert [(e.involved_object.name, e.reason) for e in by_uid] == [("a", "Created")]
    assert not_normal == []


def test_an_unsupported_event_field_is_refused_as_by_a_real_server(
    core: client.CoreV1Api, namespace: str
) -> None:
    with pytest.raises(client.ApiException) as caught:
        core.list_namespaced_event(namespace, field_selector="spec.nodeName=x")

    assert caught.value.status == 400
    assert "field label not supported: spec.nodeName" in caught.value.body


def test_events_of_every_namespace_are_listed_at_api_v1_events(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("p"))
    _reasons_once(core, namespace, "Started")

    events = core.list_event_for_all_namespaces(
        field_selector=f"involvedObject.namespace={namespace}").items

    assert {e.metadata.namespace for e in events} == {namespace}
    assert "Started" in {e.reason for e in events}


def test_a_watch_of_events_sees_them_as_they_are_recorded(
    core: client.CoreV1Api, namespace: str
) -> None:
    rv = core.list_namespaced_event(namespace).metadata.resource_version
    core.create_namespaced_pod(namespace, _pod("watched"))

    seen: list[tuple[str, str]] = []
    stream = watch.Watch()
    for event in stream.stream(core.list_namespaced_event, namespace, resource_version=rv,
                               timeout_seconds=10):
        seen.append((event["type"], event["object"].reason))
        if event["object"].reason == "Started":
            stream.stop()

    assert seen == [("ADDED", r) for r in
                    ("Scheduled", "Pulling", "Pulled", "Created", "Started")]


def test_a_repeated_event_is_one_event_with_a_count(
    core: client.CoreV1Api, namespace: str
) -> None:
    # restartPolicy Always and a short run: the container restarts over and over
    core.create_namespaced_pod(namespace, _pod(
        "again", restartPolicy="Always", annotations={DURATION: "0.02"}))

    def repeated() -> Any:
        started = _events(core, namespace, "reason=Started")
        return started if started and started[0].count >= 3 else None

    started = _wait(repeated, "Started to repeat")

    assert len(started) == 1
    assert started[0].last_timestamp >= started[0].first_timestamp


def test_a_crashing_container_records_back_off(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, _pod(
        "crash", restartPolicy="OnFailure", annotations={DURATION: "0.02", EXIT_CODE: "1"}))

    events = _reasons_once(core, namespace, "BackOff")
    uid = core.read_namespaced_pod("crash", namespace).metadata.uid

    (backoff,) = [e for e in events if e.reason == "BackOff"]
    assert backoff.type == "Warning"
    assert backoff.message == (
        f"Back-off restarting failed container main in pod crash_{namespace}({uid})")


def test_an_unschedulable_pod_records_failed_scheduling(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("nowhere", nodeSelector={"pool": "none"}))

    (event,) = _reasons_once(core, namespace, "FailedScheduling")

    assert event.type == "Warning"
    assert event.message.startswith("0/3 nodes are available: ")
    assert event.reporting_component == "default-scheduler"


def test_an_image_that_cannot_be_pulled_records_failed_then_back_off(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod(
        "nopull", "registry.example/nope:1", annotations={IMAGE_PULL_ERROR: "true"}))

    events = _reasons_once(core, namespace, "BackOff")

    failed = [e.message for e in events if e.reason == "Failed"]
    assert failed[0].startswith('Failed to pull image "registry.example/nope:1": rpc error')
    assert failed[1:] == ["Error: ErrImagePull", "Error: ImagePullBackOff"]
    assert [e.message for e in events if e.reason == "BackOff"] == [
        'Back-off pulling image "registry.example/nope:1"']


def test_deleting_a_running_pod_records_killing(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, _pod("doomed"))
    _reasons_once(core, namespace, "Started")

    core.delete_namespaced_pod("doomed", namespace)

    (killing,) = [e for e in _reasons_once(core, namespace, "Killing") if e.reason == "Killing"]
    assert (killing.type, killing.message) == ("Normal", "Stopping container main")


def test_an_oom_killed_container_records_system_oom_on_its_node(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod(
        "hungry", restartPolicy="Never",
        annotations={DURATION: "0.02", "sim.podfleet.io/oom": "true"}))

    def terminated() -> Any:
        statuses = core.read_namespaced_pod("hungry", namespace).status.container_statuses
        return statuses and statuses[0].state.terminated
    state = _wait(terminated, "the container to end")
    node = core.read_namespaced_pod("hungry", namespace).spec.node_name
    ooms = _events(core, "default", f"involvedObject.name={node},reason=SystemOOM")

    assert (state.reason, state.exit_code) == ("OOMKilled", 137)
    assert ooms and ooms[-1].type == "Warning"
    assert ooms[-1].message.startswith("System OOM encountered, victim process: main, pid: ")


def _kubectl(kubectl_bin: str, kubeconfig: Path, *args: str) -> str:
    result = subprocess.run([kubectl_bin, "--kubeconfig", str(kubeconfig), *args],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kubectl_describe_pod_shows_its_events(
    kubectl_bin: str, kubeconfig: Path, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("described"))
    _reasons_once(core, namespace, "Started")

    out = _kubectl(kubectl_bin, kubeconfig, "-n", namespace, "describe", "pod", "described")

    events = out[out.index("Events:"):].splitlines()
    assert events[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    rows = [line.split(None, 4) for line in events[3:] if line.strip()]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("Normal", "Scheduled", "default-scheduler"), ("Normal", "Pulling", "kubelet"),
        ("Normal", "Pulled", "kubelet"), ("Normal", "Created", "kubelet"),
        ("Normal", "Started", "kubelet")]
    assert rows[-1][4] == "Started container main"


def test_kubectl_get_events_with_a_field_selector(
    kubectl_bin: str, kubeconfig: Path, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("one"))
    core.create_namespaced_pod(namespace, _pod("two"))
    _wait(lambda: len(_events(core, namespace, "reason=Started")) == 2, "both started")

    out = _kubectl(kubectl_bin, kubeconfig, "-n", namespace, "get", "events",
                   "--field-selector", "involvedObject.name=two")

    lines = out.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert {line.split()[3] for line in lines[1:]} == {"pod/two"}
    assert "Started container main" in out


def test_kubernetes_asyncio_lists_and_watches_events(
    sim: ThreadSimulator, core: client.CoreV1Api, namespace: str, tmp_path: Path
) -> None:
    kubernetes_asyncio = pytest.importorskip("kubernetes_asyncio")
    core.create_namespaced_pod(namespace, _pod("aio"))
    _reasons_once(core, namespace, "Started")

    async def read() -> tuple[list[str], str]:
        async with asyncio_core_api(sim, tmp_path) as api:
            listed = await api.list_namespaced_event(
                namespace, field_selector="involvedObject.name=aio")
            stream = kubernetes_asyncio.watch.Watch()
            async with stream.stream(api.list_namespaced_event, namespace,
                                     field_selector="reason=Started",
                                     timeout_seconds=5) as events:
                async for event in events:
                    return [e.reason for e in listed.items], event["object"].message
        raise AssertionError("the watch ended without an event")

    reasons, message = asyncio.run(read())
    assert sorted(reasons) == sorted(["Scheduled", "Pulling", "Pulled", "Created", "Started"])
    assert message == "Started container main"


def test_events_are_in_discovery_and_the_openapi_documents(raw: Any) -> None:
    _, resources = raw.request("GET", "/api/v1")
    _, v3 = raw.request("GET", "/openapi/v3/api/v1")
    _, v2 = raw.request("GET", "/openapi/v2")

    (events,) = [r for r in resources["resources"] if r["name"] == "events"]
    assert (events["kind"], events["namespaced"], sorted(events["verbs"])) == (
        "Event", True, ["get", "list", "watch"])
    for document in (v3, v2):
        paths = document["paths"]
        assert paths["/api/v1/namespaces/{namespace}/events"]["get"]["operationId"] == (
            "listCoreV1NamespacedEvent")
        assert paths["/api/v1/events"]["get"]["operationId"] == "listCoreV1EventForAllNamespaces"
        assert "get" in paths["/api/v1/namespaces/{namespace}/events/{name}"]


def test_an_event_cannot_be_written_through_the_api(raw: Any, namespace: str) -> None:
    status, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/events", {
        "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}})

    assert (status, body["reason"]) == (405, "MethodNotAllowed")


def test_deleting_a_namespace_deletes_its_events(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, _pod("p"))
    _reasons_once(core, namespace, "Started")

    core.delete_namespace(namespace)

    assert core.list_event_for_all_namespaces(
        field_selector=f"metadata.namespace={namespace}").items == []


@pytest.mark.parametrize("mode, reason, message, source", [
    ("evict", "Evicted", "The node was low on resource: memory.", "kubelet"),
    ("fail", "NodeNotReady", "Node is not ready", "node-controller"),
])
def test_a_failing_node_records_why_its_pods_ended(
    mode: str, reason: str, message: str, source: str
) -> None:
    with fast_simulator() as sim:
        api_client = sim.api_client()
        core = client.CoreV1Api(api_client)
        core.create_namespaced_pod("default", pod_body("victim", {DURATION: "60"}))
        _reasons_once(core, "default", "Started")
        node = core.read_namespaced_pod("victim", "default").spec.node_name

        sim.admin.fail_node(node, mode=mode)
        events = _reasons_once(core, "default", reason)
        api_client.close()

    (event,) = [e for e in events if e.reason == reason]
    assert (event.type, event.message.strip(), event.source.component) == (
        "Warning", message, source)
    assert event.involved_object.name == "victim"
