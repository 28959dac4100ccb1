"""Label and field selectors on list and on watch, with every operator."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from kubernetes import client

LABELS = {
    "p-web": {"app": "web", "tier": "front"},
    "p-api": {"app": "api", "tier": "back"},
    "p-db": {"app": "db"},
}


@pytest.fixture
def labelled(core: client.CoreV1Api, namespace: str, make_pod) -> str:
    """Three pods with different labels; returns the list RV taken before they were made."""
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    for name, labels in LABELS.items():
        core.create_namespaced_pod(namespace, make_pod(name, labels=labels))
    return str(rv)


CASES = [
    ("app=web", {"p-web"}),
    ("app==web", {"p-web"}),
    ("app!=web", {"p-api", "p-db"}),
    ("app in (web,api)", {"p-web", "p-api"}),
    ("app notin (web,api)", {"p-db"}),
    ("tier", {"p-web", "p-api"}),
    ("!tier", {"p-db"}),
    ("app in (web, api),tier=back", {"p-api"}),
    ("tier!=front", {"p-api", "p-db"}),
]


@pytest.mark.parametrize(("selector", "expected"), CASES)
def test_label_selector_on_list(
    core: client.CoreV1Api, namespace: str, labelled: str, selector: str, expected: set[str]
) -> None:
    pods = core.list_namespaced_pod(namespace, label_selector=selector)

    assert {p.metadata.name for p in pods.items} == expected


@pytest.mark.parametrize(("selector", "expected"), CASES)
def test_label_selector_on_watch(
    raw, namespace: str, labelled: str, selector: str, expected: set[str]
) -> None:
    from urllib.parse import quote

    path = (
        f"/api/v1/namespaces/{namespace}/pods?watch=1&timeoutSeconds=5&allowWatchBookmarks=true"
        f"&resourceVersion={labelled}&labelSelector={quote(selector)}"
    )
    events = _until_caught_up(raw, path, _current_rv(raw, namespace))

    added = {e["object"]["metadata"]["name"] for e in events if e["type"] == "ADDED"}
    assert added == expected


def _current_rv(raw, namespace: str) -> int:
    return int(
        raw.request("GET", f"/api/v1/namespaces/{namespace}/pods")[1]["metadata"]["resourceVersion"]
    )


def _until_caught_up(raw, path: str, rv: int) -> list[dict[str, Any]]:
    """Watch events until a BOOKMARK shows the watch has passed `rv` (bookmarks every 0.3 s)."""
    response = raw.pool.request("GET", raw.url + path, preload_content=False)
    events: list[dict[str, Any]] = []
    buffer = b""
    try:
        for chunk in response.stream(65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                event = orjson.loads(line)
                if event["type"] != "BOOKMARK":
                    events.append(event)
                elif int(event["object"]["metadata"]["resourceVersion"]) >= rv:
                    return events
    finally:
        response.close()  # an unfinished stream must not go back to the pool
        response.release_conn()
    raise AssertionError("the watch ended before catching up")


def _field_list(core: client.CoreV1Api, namespace: str, selector: str) -> set[str]:
    return {
        p.metadata.name for p in core.list_namespaced_pod(namespace, field_selector=selector).items
    }


def test_field_selector_by_name(core: client.CoreV1Api, namespace: str, labelled: str) -> None:
    assert _field_list(core, namespace, "metadata.name=p-db") == {"p-db"}
    assert _field_list(core, namespace, "metadata.name!=p-db") == {"p-web", "p-api"}


def test_field_selector_by_namespace_across_namespaces(
    core: client.CoreV1Api, namespace: str, labelled: str
) -> None:
    pods = core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace=={namespace}")

    assert {p.metadata.name for p in pods.items} == set(LABELS)


def test_field_selector_by_phase_and_node(core: client.CoreV1Api, namespace: str, make_pod) -> None:
    import time

    core.create_namespaced_pod(namespace, make_pod("runner"))
    deadline = time.monotonic() + 10
    while core.read_namespaced_pod("runner", namespace).status.phase != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    node = core.read_namespaced_pod("runner", namespace).spec.node_name

    assert _field_list(core, namespace, "status.phase=Running") == {"runner"}
    assert _field_list(core, namespace, "status.phase=Pending") == set()
    assert _field_list(core, namespace, f"spec.nodeName={node}") == {"runner"}
    assert _field_list(core, namespace, "spec.nodeName=no-such-node") == set()


def test_object_that_stops_matching_is_deleted_from_the_watch(
    raw, core: client.CoreV1Api, namespace: str, labelled: str
) -> None:
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    core.patch_namespaced_pod("p-web", namespace, {"metadata": {"labels": {"app": "moved"}}})
    core.patch_namespaced_pod("p-db", namespace, {"metadata": {"labels": {"app": "web"}}})

    path = (
        f"/api/v1/namespaces/{namespace}/pods?watch=1&timeoutSeconds=1"
        f"&resourceVersion={rv}&labelSelector=app%3Dweb"
    )
    events: list[dict[str, Any]] = [
        orjson.loads(line)
        for line in raw.pool.request("GET", raw.url + path).data.splitlines()
        if line.strip()
    ]

    summary = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert ("DELETED", "p-web") in summary
    assert ("ADDED", "p-db") in summary
    deleted = next(e for e in events if e["type"] == "DELETED")
    assert deleted["object"]["metadata"]["labels"]["app"] == "web"  # the last matching state
    assert int(deleted["object"]["metadata"]["resourceVersion"]) > int(rv)


@pytest.mark.parametrize(
    "selector", ["a in (b", "a=(", "!", "a notin b", "k=v v", "bad key=1", "a=" + "x" * 64]
)
def test_invalid_label_selectors_are_400(raw, namespace: str, selector: str) -> None:
    from urllib.parse import quote

    code, body = raw.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={quote(selector)}"
    )

    assert code == 400
    assert body["reason"] == "BadRequest"


def test_invalid_selector_on_watch_is_400(raw, namespace: str) -> None:
    code, body = raw.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods?watch=1&fieldSelector=spec.color%3Dred"
    )

    assert code == 400
    assert body["message"] == "field label not supported: spec.color"
