"""The API server's query and body rules: booleans, and bodiless writes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from typing import Any as Raw  # the Raw fixture of conftest.py

import orjson
import pytest
from cluster_support import asyncio_core_api
from kubernetes import client

from podfleet.simulator.server import ThreadSimulator


def _pods_path(namespace: str, query: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/pods" + (f"?{query}" if query else "")


def _watch_lines(raw: Raw, path: str) -> list[dict[str, Any]]:
    response = raw.pool.request("GET", raw.url + path, retries=False)
    assert response.status == 200
    return [orjson.loads(line) for line in response.data.splitlines() if line.strip()]


@pytest.mark.parametrize("value", ["True", "TRUE", "yes", "2", ""])
def test_any_watch_value_but_0_or_false_watches(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any, value: str
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    events = _watch_lines(raw, _pods_path(namespace, f"watch={value}&timeoutSeconds=1"))

    assert (events[0]["type"], events[0]["object"]["metadata"]["name"]) == ("ADDED", "p")


@pytest.mark.parametrize("value", ["false", "False", "FALSE", "0"])
def test_watch_0_or_false_in_any_case_lists(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any, value: str
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    status, body = raw.request("GET", _pods_path(namespace, f"watch={value}"))

    assert (status, body["kind"], len(body["items"])) == (200, "PodList", 1)


def test_allow_watch_bookmarks_true_capitalised_sends_bookmarks(
    raw: Raw, namespace: str
) -> None:
    # The session simulator sends a bookmark every 0.3 s.
    events = _watch_lines(
        raw, _pods_path(namespace, "watch=True&allowWatchBookmarks=True&timeoutSeconds=1")
    )

    assert "BOOKMARK" in {e["type"] for e in events}


def test_kubernetes_asyncio_watch_gets_events(
    sim: ThreadSimulator, namespace: str, core: client.CoreV1Api, make_pod: Any,
    tmp_path: Path,
) -> None:
    kubernetes_asyncio = pytest.importorskip("kubernetes_asyncio")
    core.create_namespaced_pod(namespace, make_pod("p"))

    async def first_event() -> tuple[str, str]:
        async with asyncio_core_api(sim, tmp_path) as api:
            watch = kubernetes_asyncio.watch.Watch()
            async with watch.stream(
                api.list_namespaced_pod, namespace, timeout_seconds=5
            ) as stream:
                async for event in stream:
                    return event["type"], event["object"].metadata.name
        raise AssertionError("the watch ended without an event")

    assert asyncio.run(first_event()) == ("ADDED", "p")


def _bodiless(raw: Raw, method: str, path: str, content_type: str | None) -> tuple[int, Any]:
    headers = {**raw.pool.headers, "Content-Length": "0"}
    if content_type:
        headers["Content-Type"] = content_type
    response = raw.pool.request(method, raw.url + path, body=b"", headers=headers, retries=False)
    return response.status, orjson.loads(response.data)


def test_a_bodiless_delete_deletes(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    status, body = _bodiless(raw, "DELETE", _pods_path(namespace) + "/p", None)

    assert (status, body["metadata"]["name"]) == (200, "p")


def test_a_bodiless_delete_collection_deletes(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    status, body = _bodiless(raw, "DELETE", _pods_path(namespace), "application/json")

    assert (status, body["kind"], len(body["items"])) == (200, "PodList", 1)


def test_an_empty_create_body_is_a_bad_request(raw: Raw, namespace: str) -> None:
    status, body = _bodiless(raw, "POST", _pods_path(namespace), "application/json")

    assert (status, body["reason"]) == (400, "BadRequest")
    assert body["message"].startswith("the object provided is unrecognized (must be of type Pod)")


@pytest.mark.parametrize(
    ("method", "content_type"),
    [
        ("PUT", "application/json"),
        ("PATCH", "application/merge-patch+json"),
        ("PATCH", "application/strategic-merge-patch+json"),
        ("PATCH", "application/json-patch+json"),
    ],
)
def test_an_empty_update_body_is_a_bad_request(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any, method: str,
    content_type: str,
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    status, body = _bodiless(raw, method, _pods_path(namespace) + "/p", content_type)

    assert (status, body["reason"]) == (400, "BadRequest")


def test_an_empty_binding_body_is_a_bad_request(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    status, body = _bodiless(
        raw, "POST", _pods_path(namespace) + "/p/binding", "application/json"
    )

    assert (status, body["reason"]) == (400, "BadRequest")
