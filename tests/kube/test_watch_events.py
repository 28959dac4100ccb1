"""Watch lines decoded to the pod fields podfleet reads (podfleet.kube.watch_events)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from podfleet.contracts import pod_status
from podfleet.contracts.judgement import judge
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import pod_name, task_annotations, task_identity, task_labels
from podfleet.kube.errors import Gone, error_from_status
from podfleet.kube.watch_events import decode_watch_event
from podfleet.workers.watcher import phases

FATAL = frozenset({"ErrImagePull", "InvalidImageName"})
KEY = TaskKey("dag", "task", "run", -1, 1)


def a_pod(status: dict[str, Any], *, deleting: bool = False) -> dict[str, Any]:
    """A whole pod as the API serves it: spec, managed fields and all."""
    meta: dict[str, Any] = {
        "name": pod_name(KEY, "launch-1"), "namespace": "default", "uid": "uid-1",
        "resourceVersion": "42", "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": task_labels(KEY, "launch-1", "exec-1"),
        "annotations": task_annotations(KEY, "launch-1", "exec-1", 1714557600.0),
        "managedFields": [{"manager": "podfleet", "operation": "Update",
                           "fieldsV1": {"f:spec": {"f:containers": {}}}}]}
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T10:01:00Z"
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta,
            "spec": {"nodeName": "node-1", "restartPolicy": "Never",
                     "containers": [{"name": "base", "image": "python:3.11-slim",
                                     "args": ["airflow", "tasks", "run"],
                                     "env": [{"name": "A", "value": "1"}],
                                     "resources": {"requests": {"cpu": "100m"}}}],
                     "tolerations": [{"key": "k", "operator": "Exists"}]},
            "status": status}


def container(name: str, state: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "state": state, "lastState": {}, "ready": False,
            "restartCount": 0, "image": "python:3.11-slim", "imageID": "sha256:0"}


TERMINATED = {"startedAt": "2024-05-01T10:00:02Z", "finishedAt": "2024-05-01T10:00:09Z"}
SAMPLES = {
    "pending, unscheduled": a_pod({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available", "lastTransitionTime": "2024-05-01T10:00:01Z"}]}),
    "pending, image pull failing": a_pod({"phase": "Pending", "containerStatuses": [
        container("base", {"waiting": {"reason": "ErrImagePull", "message": "no such image"}})]}),
    "init container failing": a_pod({"phase": "Pending", "initContainerStatuses": [
        container("init", {"waiting": {"reason": "InvalidImageName"}})]}),
    "running": a_pod({"phase": "Running", "hostIP": "10.0.0.1", "containerStatuses": [
        container("base", {"running": {"startedAt": "2024-05-01T10:00:02Z"}})]}),
    "succeeded": a_pod({"phase": "Succeeded", "containerStatuses": [
        container("base", {"terminated": {"exitCode": 0, "reason": "Completed",
                                          **TERMINATED}})]}),
    "failed with an exit code": a_pod({"phase": "Failed", "containerStatuses": [
        container("base", {"terminated": {"exitCode": 3, "reason": "Error",
                                          "message": "boom", **TERMINATED}})]}),
    "OOMKilled": a_pod({"phase": "Failed", "containerStatuses": [
        container("base", {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                          **TERMINATED}})]}),
    "evicted": a_pod({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}),
    "failed by its deletion": a_pod({"phase": "Failed", "containerStatuses": [
        container("base", {"terminated": {"exitCode": 143, **TERMINATED}})]},
        deleting=True),
}


def watched(pod: dict[str, Any], kind: str = "MODIFIED") -> dict[str, Any]:
    event = decode_watch_event(orjson.dumps({"type": kind, "object": pod}))
    assert event["type"] == kind
    decoded: dict[str, Any] = event["object"]
    return decoded


@pytest.mark.parametrize("pod", SAMPLES.values(), ids=SAMPLES.keys())
def test_a_decoded_pod_is_judged_as_the_whole_pod_is(pod: dict[str, Any]) -> None:
    assert judge(watched(pod), FATAL) == judge(pod, FATAL)
    assert judge(watched(pod), FATAL, gone=True) == judge(pod, FATAL, gone=True)


@pytest.mark.parametrize("pod", SAMPLES.values(), ids=SAMPLES.keys())
def test_a_decoded_pod_gives_the_watcher_the_same_event_and_record(
        pod: dict[str, Any]) -> None:
    for deleted in (False, True):
        assert (phases.observe(watched(pod), None, deleted=deleted, fatal_reasons=FATAL, now=1.0)
                == phases.observe(pod, None, deleted=deleted, fatal_reasons=FATAL, now=1.0))


@pytest.mark.parametrize("pod", SAMPLES.values(), ids=SAMPLES.keys())
def test_a_decoded_pod_keeps_the_facts_read_from_its_status(pod: dict[str, Any]) -> None:
    slim = watched(pod)
    assert task_identity(slim) == task_identity(pod)
    assert pod_status.start_latency(slim) == pod_status.start_latency(pod)
    assert pod_status.finished_at(slim) == pod_status.finished_at(pod)
    assert pod_status.pending_reason(slim) == pod_status.pending_reason(pod)


def test_the_spec_is_decoded_only_for_the_node_and_container_names() -> None:
    assert watched(SAMPLES["running"])["spec"] == {"nodeName": "node-1",
                                                    "containers": [{"name": "base"}]}
    assert "managedFields" not in watched(SAMPLES["running"])["metadata"]


def test_a_bookmark_carries_its_resource_version() -> None:
    line = orjson.dumps({"type": "BOOKMARK", "object": {
        "kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "1234"}}})
    assert decode_watch_event(line)["object"]["metadata"] == {"resourceVersion": "1234"}


def test_an_error_event_keeps_its_whole_status_and_names_its_error() -> None:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "too old resource version: 1 (42)", "reason": "Expired", "code": 410}
    event = decode_watch_event(orjson.dumps({"type": "ERROR", "object": status}))
    assert event == {"type": "ERROR", "object": status}
    assert isinstance(error_from_status(410, event["object"]), Gone)


def test_a_pod_with_a_value_of_an_unexpected_type_is_decoded_whole() -> None:
    odd = a_pod({"phase": "Failed", "containerStatuses": [
        container("base", {"terminated": {"exitCode": "3", "reason": "Error"}})]})
    assert watched(odd) == odd


def test_a_line_that_is_not_json_is_refused_as_before() -> None:
    with pytest.raises(ValueError):
        decode_watch_event(b'{"type": "MODIFIED", "object": {')
