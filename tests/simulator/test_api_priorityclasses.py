"""PriorityClasses and the Priority admission of pods, as kube-apiserver has them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from test_api_kubectl import kubectl


def _pod(name: str, class_name: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
    if class_name:
        spec["priorityClassName"] = class_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


@pytest.fixture
def scheduling(api_client: client.ApiClient) -> client.SchedulingV1Api:
    return client.SchedulingV1Api(api_client)


@pytest.fixture
def make_class(scheduling: client.SchedulingV1Api) -> Iterator[Any]:
    """Creates PriorityClasses (cluster-scoped) and deletes them after the test."""
    made: list[str] = []

    def make(value: int, **fields: Any) -> str:
        name = f"pc-{uuid.uuid4().hex[:8]}"
        scheduling.create_priority_class(
            {"metadata": {"name": name}, "value": value, **fields})
        made.append(name)
        return name

    yield make
    for name in made:
        scheduling.delete_priority_class(name)


def test_a_pod_gets_the_priority_of_its_class(
    core: client.CoreV1Api, namespace: str, make_class: Any
) -> None:
    name = make_class(1000, preemptionPolicy="Never")

    pod = core.create_namespaced_pod(namespace, _pod("p", name))

    assert pod.spec.priority == 1000
    assert pod.spec.preemption_policy == "Never"


def test_a_pod_naming_an_unknown_class_is_forbidden(
    core: client.CoreV1Api, namespace: str
) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod(namespace, _pod("p", "no-such-class"))

    assert caught.value.status == 403
    body = json.loads(caught.value.body)
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('pods "p" is forbidden: no PriorityClass with name no-such-class '
                               "was found")


def test_the_global_default_class_applies_to_pods_without_one(
    core: client.CoreV1Api, namespace: str, make_class: Any
) -> None:
    name = make_class(77, globalDefault=True)

    pod = core.create_namespaced_pod(namespace, _pod("p"))

    assert (pod.spec.priority_class_name, pod.spec.priority) == (name, 77)


def test_only_one_class_may_be_the_global_default(
    scheduling: client.SchedulingV1Api, make_class: Any
) -> None:
    first = make_class(1, globalDefault=True)

    with pytest.raises(ApiException) as caught:
        scheduling.create_priority_class(
            {"metadata": {"name": "second-default"}, "value": 2, "globalDefault": True})

    assert caught.value.status == 403
    assert f"PriorityClass {first} is already marked as default" in caught.value.body


def test_a_user_class_above_one_billion_is_invalid(scheduling: client.SchedulingV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        scheduling.create_priority_class({"metadata": {"name": "huge"}, "value": 2_000_000_000})

    assert caught.value.status == 422
    assert "maximum allowed value of a user defined priority is 1000000000" in caught.value.body


def test_kubectl_get_priorityclass_lists_the_system_classes(
    kubectl_bin: str, kubeconfig: Path
) -> None:
    out = kubectl(kubectl_bin, kubeconfig, "get", "priorityclass")

    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    cells = {row.split()[0]: row.split() for row in rows}
    assert cells["system-cluster-critical"][1:3] == ["2000000000", "false"]
    assert cells["system-node-critical"][4] == "PreemptLowerPriority"
