"""Pod verbs through the official client: create, get, list, patch, replace, status, delete."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


def _wait_gone(core: client.CoreV1Api, name: str, namespace: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        time.sleep(0.02)
    return False


def _wait_phase(core: client.CoreV1Api, name: str, namespace: str, phase: str) -> client.V1Pod:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase == phase:
            return pod
        time.sleep(0.02)
    raise AssertionError(f"pod {name} never reached {phase}")


def test_create_returns_the_defaulted_pod(core: client.CoreV1Api, namespace: str, make_pod) -> None:
    pod = core.create_namespaced_pod(namespace, make_pod("web"))

    assert pod.metadata.name == "web"
    assert pod.metadata.namespace == namespace
    assert pod.metadata.uid
    assert int(pod.metadata.resource_version) > 0
    assert pod.metadata.creation_timestamp is not None
    assert pod.status.phase == "Pending"
    assert pod.spec.restart_policy == "Always"
    assert pod.spec.containers[0].image_pull_policy == "IfNotPresent"


def test_get_returns_what_was_created(core: client.CoreV1Api, namespace: str, make_pod) -> None:
    created = core.create_namespaced_pod(namespace, make_pod("get-me", labels={"app": "x"}))

    fetched = core.read_namespaced_pod("get-me", namespace)

    assert fetched.metadata.uid == created.metadata.uid
    assert fetched.metadata.labels == {"app": "x"}


def test_generate_name_makes_a_unique_name(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    first = core.create_namespaced_pod(namespace, make_pod(generateName="task-"))
    second = core.create_namespaced_pod(namespace, make_pod(generateName="task-"))

    assert first.metadata.name.startswith("task-")
    assert len(first.metadata.name) == len("task-") + 5
    assert first.metadata.name != second.metadata.name
    assert first.metadata.generate_name == "task-"


def test_list_is_sorted_and_carries_the_store_resource_version(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    for name in ("b", "c", "a"):
        core.create_namespaced_pod(namespace, make_pod(name))

    pods = core.list_namespaced_pod(namespace)

    assert [p.metadata.name for p in pods.items] == ["a", "b", "c"]
    assert int(pods.metadata.resource_version) >= max(
        int(p.metadata.resource_version) for p in pods.items
    )


def test_list_across_namespaces_includes_every_namespace(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    other = namespace + "-b"
    core.create_namespace({"metadata": {"name": other}})
    core.create_namespaced_pod(namespace, make_pod("one"))
    core.create_namespaced_pod(other, make_pod("two"))

    names = {
        (p.metadata.namespace, p.metadata.name) for p in core.list_pod_for_all_namespaces().items
    }

    assert {(namespace, "one"), (other, "two")} <= names


def test_list_pages_with_limit_and_continue(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    for index in range(5):
        core.create_namespaced_pod(namespace, make_pod(f"p{index}"))

    first = core.list_namespaced_pod(namespace, limit=2)
    second = core.list_namespaced_pod(namespace, limit=2, _continue=first.metadata._continue)
    third = core.list_namespaced_pod(namespace, limit=2, _continue=second.metadata._continue)

    assert [p.metadata.name for p in first.items] == ["p0", "p1"]
    assert first.metadata.remaining_item_count == 3
    assert [p.metadata.name for p in second.items] == ["p2", "p3"]
    assert [p.metadata.name for p in third.items] == ["p4"]
    assert third.metadata._continue is None


def test_merge_patch_adds_and_removes_labels(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("lab", labels={"keep": "1", "drop": "1"}))

    patched = core.patch_namespaced_pod(
        "lab",
        namespace,
        {"metadata": {"labels": {"drop": None, "new": "2"}, "annotations": {"a": "b"}}},
        _content_type="application/merge-patch+json",
    )

    assert patched.metadata.labels == {"keep": "1", "new": "2"}
    assert patched.metadata.annotations == {"a": "b"}


def test_strategic_merge_patch_changes_labels(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    created = core.create_namespaced_pod(namespace, make_pod("smp", labels={"a": "1"}))

    patched = core.patch_namespaced_pod(
        "smp",
        namespace,
        {"metadata": {"labels": {"b": "2"}}},
        _content_type="application/strategic-merge-patch+json",
    )

    assert patched.metadata.labels == {"a": "1", "b": "2"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)


def test_json_patch_replaces_an_annotation(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("jp", annotations={"x": "1"}))

    patched = core.patch_namespaced_pod(
        "jp",
        namespace,
        [{"op": "replace", "path": "/metadata/annotations/x", "value": "2"}],
        _content_type="application/json-patch+json",
    )

    assert patched.metadata.annotations == {"x": "2"}


def test_patch_that_changes_the_spec_is_forbidden(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("immutable"))

    with pytest.raises(ApiException) as info:
        core.patch_namespaced_pod(
            "immutable",
            namespace,
            {"spec": {"restartPolicy": "Never"}},
            _content_type="application/merge-patch+json",
        )

    assert info.value.status == 422
    assert "pod updates may not change fields" in info.value.body


def test_patch_can_change_the_image(core: client.CoreV1Api, namespace: str, make_pod) -> None:
    core.create_namespaced_pod(namespace, make_pod("img"))

    patched = core.patch_namespaced_pod(
        "img", namespace, {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}}
    )

    assert patched.spec.containers[0].image == "busybox:1.37"


def test_replace_updates_labels(core: client.CoreV1Api, namespace: str, make_pod) -> None:
    core.create_namespaced_pod(namespace, make_pod("put"))
    current = _wait_phase(core, "put", namespace, "Running")
    current.metadata.labels = {"replaced": "yes"}
    current.metadata.resource_version = None  # unconditional, as pods allow

    replaced = core.replace_namespaced_pod("put", namespace, current)

    assert replaced.metadata.labels == {"replaced": "yes"}
    assert replaced.spec.node_name == current.spec.node_name


def test_status_subresource_changes_only_status(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("st"))

    patched = core.patch_namespaced_pod_status(
        "st",
        namespace,
        {"metadata": {"labels": {"ignored": "yes"}}, "status": {"message": "hello"}},
    )
    # (the simulated kubelet may rewrite the status right after, so check the answer itself)
    read = core.read_namespaced_pod_status("st", namespace)

    assert patched.status.message == "hello"
    assert int(patched.metadata.resource_version) <= int(read.metadata.resource_version)
    assert not (patched.metadata.labels or {}).get("ignored")
    assert not (read.metadata.labels or {}).get("ignored")


def test_update_without_change_makes_no_new_version(core: client.CoreV1Api, namespace: str) -> None:
    before = core.patch_namespace(namespace, {"metadata": {"labels": {"team": "a"}}})

    after = core.patch_namespace(namespace, {"metadata": {"labels": {"team": "a"}}})

    assert after.metadata.resource_version == before.metadata.resource_version


@pytest.mark.parametrize("options", [
    {"grace_period_seconds": 0},
    {"body": client.V1DeleteOptions(grace_period_seconds=0)},
], ids=["query", "body options"])
def test_delete_with_zero_grace_removes_at_once(
    core: client.CoreV1Api, namespace: str, make_pod, options: dict[str, Any]
) -> None:
    core.create_namespaced_pod(namespace, make_pod("now"))
    _wait_phase(core, "now", namespace, "Running")

    core.delete_namespaced_pod("now", namespace, **options)

    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod("now", namespace)
    assert info.value.status == 404


def test_graceful_delete_sets_deletion_timestamp_then_removes(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    body = make_pod("graceful")
    body["spec"]["terminationGracePeriodSeconds"] = 1
    core.create_namespaced_pod(namespace, body)
    _wait_phase(core, "graceful", namespace, "Running")

    answer = core.delete_namespaced_pod("graceful", namespace)

    assert answer.metadata.deletion_timestamp is not None
    assert answer.metadata.deletion_grace_period_seconds == 1
    assert _wait_gone(core, "graceful", namespace)


def test_delete_of_a_missing_pod_is_404(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as info:
        core.delete_namespaced_pod("never", namespace)

    assert info.value.status == 404


def test_delete_collection_removes_matching_pods(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("x1", labels={"batch": "x"}))
    core.create_namespaced_pod(namespace, make_pod("y1", labels={"batch": "y"}))

    core.delete_collection_namespaced_pod(
        namespace, label_selector="batch=x", grace_period_seconds=0
    )

    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == ["y1"]


def test_nodes_are_listed_with_capacity(core: client.CoreV1Api) -> None:
    nodes = core.list_node()

    assert len(nodes.items) == 3
    first = core.read_node(nodes.items[0].metadata.name)
    assert first.status.capacity["pods"]


def test_namespaces_include_the_defaults(core: client.CoreV1Api) -> None:
    names = {ns.metadata.name for ns in core.list_namespace().items}

    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


def test_namespace_can_be_created_and_read(core: client.CoreV1Api, namespace: str) -> None:
    ns = core.read_namespace(namespace)

    assert ns.status.phase == "Active"
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == namespace
