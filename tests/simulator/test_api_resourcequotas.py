"""ResourceQuota objects and the quota admission of pod creates, as kube-apiserver has them."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cluster_support import wait_for
from kubernetes import client
from kubernetes.client.rest import ApiException
from test_api_kubectl import kubectl


def _quota(name: str, **hard: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name},
            "spec": {"hard": {key.replace("_", "."): value for key, value in hard.items()}}}


def _create_quota(core: client.CoreV1Api, namespace: str, **hard: str) -> Any:
    """Create quota ``q`` in ``namespace`` with these hard limits (``requests_cpu`` is
    ``requests.cpu``)."""
    return core.create_namespaced_resource_quota(namespace, _quota("q", **hard))


def _pod(name: str, *, requests: dict[str, str] | None = None,
         limits: dict[str, str] | None = None,
         annotations: dict[str, str] | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": "busybox",
                                     "resources": resources}]}}


def _refused(core: client.CoreV1Api, namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
    """The Status of the 403 that refuses ``pod``'s create."""
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod(namespace, pod)
    assert caught.value.status == 403
    body: dict[str, Any] = json.loads(caught.value.body)
    return body


def _used(core: client.CoreV1Api, namespace: str, name: str = "q") -> dict[str, str]:
    used: dict[str, str] = core.read_namespaced_resource_quota(name, namespace).status.used
    return used


def test_a_new_quota_reports_its_hard_limits_and_what_is_used(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_pod(namespace, _pod("p", requests={"cpu": "250m"}))

    quota = _create_quota(core, namespace, pods="10", requests_cpu="2")

    assert quota.status.hard == {"pods": "10", "requests.cpu": "2"}
    assert quota.status.used == {"pods": "1", "requests.cpu": "250m"}


def test_a_pod_past_the_cpu_quota_is_forbidden_with_the_real_message(
    core: client.CoreV1Api, namespace: str
) -> None:
    _create_quota(core, namespace, requests_cpu="1")
    core.create_namespaced_pod(namespace, _pod("a", requests={"cpu": "600m"}))

    status = _refused(core, namespace, _pod("b", requests={"cpu": "600m"}))

    assert status["reason"] == "Forbidden"
    assert status["details"] == {"name": "b", "kind": "pods"}
    assert status["message"] == (
        'pods "b" is forbidden: exceeded quota: q, requested: requests.cpu=600m, '
        "used: requests.cpu=600m, limited: requests.cpu=1")


def test_the_pods_quota_counts_pods(core: client.CoreV1Api, namespace: str) -> None:
    _create_quota(core, namespace, pods="1")
    core.create_namespaced_pod(namespace, _pod("a"))

    status = _refused(core, namespace, _pod("b"))

    assert status["message"] == ('pods "b" is forbidden: exceeded quota: q, requested: pods=1, '
                                 "used: pods=1, limited: pods=1")


def test_a_quota_on_limits_requires_every_container_to_set_them(
    core: client.CoreV1Api, namespace: str
) -> None:
    _create_quota(core, namespace, limits_cpu="4", limits_memory="1Gi")

    status = _refused(core, namespace, _pod("a", requests={"cpu": "1"}))

    assert status["message"] == ('pods "a" is forbidden: failed quota: q: must specify '
                                 "limits.cpu for: main; limits.memory for: main")


def test_used_follows_pods_as_they_are_created_and_deleted(
    core: client.CoreV1Api, namespace: str
) -> None:
    _create_quota(core, namespace, pods="5", requests_memory="1Gi")
    core.create_namespaced_pod(namespace, _pod("a", requests={"memory": "256Mi"}))
    after_create = _used(core, namespace)

    core.delete_namespaced_pod("a", namespace, grace_period_seconds=0)

    assert after_create == {"pods": "1", "requests.memory": "256Mi"}
    assert _used(core, namespace) == {"pods": "0", "requests.memory": "0"}


def test_finished_pods_free_their_share_but_still_count_as_objects(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "q"},
                    "spec": {"hard": {"pods": "1", "count/pods": "5", "requests.cpu": "1"}}})
    core.create_namespaced_pod(namespace, _pod(
        "short", requests={"cpu": "1"}, annotations={"sim.podfleet.io/duration": "0.05"}))

    wait_for(lambda: core.read_namespaced_pod("short", namespace).status.phase == "Succeeded",
             what="the pod to finish")
    core.create_namespaced_pod(namespace, _pod("next", requests={"cpu": "1"}))

    assert _used(core, namespace) == {"pods": "1", "count/pods": "2", "requests.cpu": "1"}


def test_concurrent_creates_never_overshoot_the_quota(
    core: client.CoreV1Api, namespace: str
) -> None:
    _create_quota(core, namespace, pods="5")

    def create(index: int) -> bool:
        try:
            core.create_namespaced_pod(namespace, _pod(f"p{index}"))
        except ApiException as error:
            assert error.status == 403
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        created = sum(pool.map(create, range(24)))

    assert created == 5
    assert len(core.list_namespaced_pod(namespace).items) == 5


def test_a_raised_quota_admits_again(core: client.CoreV1Api, namespace: str) -> None:
    _create_quota(core, namespace, pods="1")
    core.create_namespaced_pod(namespace, _pod("a"))

    core.patch_namespaced_resource_quota("q", namespace, {"spec": {"hard": {"pods": "2"}}})
    core.create_namespaced_pod(namespace, _pod("b"))

    quota = core.read_namespaced_resource_quota("q", namespace)
    assert quota.status.hard == {"pods": "2"} and quota.status.used == {"pods": "2"}


def test_a_quota_with_a_bad_quantity_is_invalid(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as caught:
        _create_quota(core, namespace, requests_cpu="lots")

    assert caught.value.status == 422
    message = json.loads(caught.value.body)["message"]
    assert message.startswith('ResourceQuota "q" is invalid: spec.hard[requests.cpu]: '
                              'Invalid value: "lots": quantities must match')


def test_kubectl_get_and_describe_quota(
    kubectl_bin: str, kubeconfig: Path, core: client.CoreV1Api, namespace: str
) -> None:
    _create_quota(core, namespace, pods="10", requests_cpu="2", limits_memory="4Gi")
    core.create_namespaced_pod(namespace, _pod(
        "a", requests={"cpu": "500m"}, limits={"memory": "1Gi"}))

    listing = kubectl(kubectl_bin, kubeconfig, "-n", namespace, "get", "quota")
    described = kubectl(kubectl_bin, kubeconfig, "-n", namespace, "describe", "quota", "q")

    header, row = listing.splitlines()
    assert header.split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert row.split()[0] == "q"
    assert row.split(None, 2)[2].split() == ["pods:", "1/10,", "requests.cpu:", "500m/2",
                                             "limits.memory:", "1Gi/4Gi"]
    lines = [line.split() for line in described.splitlines()]
    assert ["Resource", "Used", "Hard"] in lines
    assert ["requests.cpu", "500m", "2"] in lines
    assert ["limits.memory", "1Gi", "4Gi"] in lines
