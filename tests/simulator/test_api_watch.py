"""The watch protocol: initial state, resume from a resourceVersion, 410, bookmarks, timeouts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from podfleet.simulator.server import ThreadSimulator


def _events(
    core: client.CoreV1Api, namespace: str, *, timeout: int = 1, **kwargs: Any
) -> list[dict[str, Any]]:
    """Every event of a namespaced pod watch until the server ends it after `timeout` s."""
    return list(
        watch.Watch().stream(
            core.list_namespaced_pod,
            namespace,
            timeout_seconds=timeout,
            _preload_content=False,
            **kwargs,
        )
    )


def _raw_watch(raw, path: str) -> list[dict[str, Any]]:
    response = raw.pool.request("GET", raw.url + path, preload_content=False)
    lines = [orjson.loads(line) for line in response.data.splitlines() if line.strip()]
    response.release_conn()
    return lines


@contextmanager
def _history_of(sim: ThreadSimulator, events: int) -> Iterator[None]:
    """The store keeps only the last ``events`` changes inside the block, then its own window
    again."""
    store = sim.runtime.store
    events_kept, seconds_kept = sim.call(store.history_window)
    sim.call(lambda: store.set_history_window(events=events))
    try:
        yield
    finally:
        sim.call(lambda: store.set_history_window(events=events_kept, seconds=seconds_kept))


def _kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["raw_object"]["metadata"]["name"]) for e in events]


def test_watch_without_resource_version_starts_with_the_current_state(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("a"))
    core.create_namespaced_pod(namespace, make_pod("b"))

    events = _events(core, namespace, timeout=1)

    added = [name for kind, name in _kinds(events) if kind == "ADDED"]
    assert added[:2] == ["a", "b"]


def test_watch_from_zero_also_starts_with_the_current_state(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("z"))

    events = _events(core, namespace, timeout=1, resource_version="0")

    assert ("ADDED", "z") in _kinds(events)


def test_watch_from_a_list_resource_version_sees_only_later_changes(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("before"))
    listed = core.list_namespaced_pod(namespace)
    core.create_namespaced_pod(namespace, make_pod("after"))

    events = _events(core, namespace, resource_version=listed.metadata.resource_version)

    names = {name for _, name in _kinds(events)}
    assert "after" in names
    assert "before" not in names or all(
        kind != "ADDED" for kind, name in _kinds(events) if name == "before"
    )


def test_resume_delivers_every_change_once_in_order(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    start = core.list_namespaced_pod(namespace).metadata.resource_version
    for index in range(20):
        core.create_namespaced_pod(namespace, make_pod(f"r{index:02d}"))
    core.patch_namespaced_pod("r03", namespace, {"metadata": {"labels": {"x": "y"}}})
    core.delete_namespaced_pod("r05", namespace, grace_period_seconds=0)

    # One watch reads from `start`; a second resumes from the middle of what the first saw.
    first = _events(core, namespace, resource_version=start)
    middle = first[len(first) // 2]["raw_object"]["metadata"]["resourceVersion"]
    resumed = _events(core, namespace, resource_version=middle)

    versions = [int(e["raw_object"]["metadata"]["resourceVersion"]) for e in first]
    assert versions == sorted(versions)
    assert len(versions) == len(set(versions))
    assert [e["type"] for e in first].count("ADDED") == 20
    assert ("DELETED", "r05") in _kinds(first)
    tail = [int(e["raw_object"]["metadata"]["resourceVersion"]) for e in resumed]
    expected_tail = [v for v in versions if v > int(middle)]
    assert tail[: len(expected_tail)] == expected_tail


def test_watch_from_before_the_history_window_gets_410_expired(
    sim: ThreadSimulator, core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    old = core.list_namespaced_pod(namespace).metadata.resource_version
    with _history_of(sim, events=5):
        for index in range(10):
            core.create_namespaced_pod(namespace, make_pod(f"h{index}"))

        stream = watch.Watch().stream(
            core.list_namespaced_pod,
            namespace,
            resource_version=old,
            timeout_seconds=2,
            _preload_content=False,
        )
        with pytest.raises(ApiException) as info:
            list(stream)

    assert info.value.status == 410
    assert info.value.reason.startswith("Expired: too old resource version: " + old)


def test_expired_watch_sends_one_error_event_with_a_status(
    sim: ThreadSimulator, raw, core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    old = core.list_namespaced_pod(namespace).metadata.resource_version
    with _history_of(sim, events=3):
        for index in range(6):
            core.create_namespaced_pod(namespace, make_pod(f"e{index}"))
        lines = _raw_watch(
            raw, f"/api/v1/namespaces/{namespace}/pods?watch=1&resourceVersion={old}"
        )

    assert len(lines) == 1
    assert lines[0]["type"] == "ERROR"
    status = lines[0]["object"]
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old} (")


def test_continue_token_older_than_the_window_is_410(
    sim: ThreadSimulator, core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    for index in range(3):
        core.create_namespaced_pod(namespace, make_pod(f"c{index}"))
    first = core.list_namespaced_pod(namespace, limit=1)
    with _history_of(sim, events=2):
        for index in range(4):
            core.create_namespaced_pod(namespace, make_pod(f"d{index}"))
        with pytest.raises(ApiException) as info:
            core.list_namespaced_pod(namespace, limit=1, _continue=first.metadata._continue)

    assert info.value.status == 410
    assert orjson.loads(info.value.body)["reason"] == "Expired"


def test_bookmarks_carry_the_current_resource_version(
    raw, core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("bm"))
    rv = core.list_namespaced_pod(namespace).metadata.resource_version

    lines = _raw_watch(
        raw,
        f"/api/v1/namespaces/{namespace}/pods?watch=true&resourceVersion={rv}"
        "&allowWatchBookmarks=true&timeoutSeconds=1",
    )

    bookmarks = [line for line in lines if line["type"] == "BOOKMARK"]
    assert bookmarks
    assert bookmarks[0]["object"]["kind"] == "Pod"
    assert bookmarks[0]["object"]["apiVersion"] == "v1"
    assert int(bookmarks[-1]["object"]["metadata"]["resourceVersion"]) >= int(rv)


def test_no_bookmarks_unless_asked(raw, core: client.CoreV1Api, namespace: str) -> None:
    lines = _raw_watch(raw, f"/api/v1/namespaces/{namespace}/pods?watch=1&timeoutSeconds=1")

    assert [line for line in lines if line["type"] == "BOOKMARK"] == []


def test_timeout_seconds_ends_the_stream(raw, namespace: str) -> None:
    started = time.monotonic()

    lines = _raw_watch(raw, f"/api/v1/namespaces/{namespace}/pods?watch=1&timeoutSeconds=1")

    assert lines == []
    assert time.monotonic() - started < 10


def test_official_watch_sees_the_pod_lifecycle(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    core.create_namespaced_pod(namespace, make_pod("life"))
    seen: list[tuple[str, str]] = []
    deleted = False
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_pod, namespace, resource_version=rv, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].status.phase))
        if event["object"].status.phase == "Running" and not deleted:
            core.delete_namespaced_pod("life", namespace, grace_period_seconds=0)
            deleted = True
        if event["type"] == "DELETED":
            w.stop()

    assert seen[0] == ("ADDED", "Pending")
    assert ("MODIFIED", "Running") in seen
    assert seen[-1][0] == "DELETED"


def test_watch_of_all_namespaces_sees_every_namespace(
    raw, core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    rv = core.list_pod_for_all_namespaces(limit=1).metadata.resource_version
    other = namespace + "-w"
    core.create_namespace({"metadata": {"name": other}})
    core.create_namespaced_pod(namespace, make_pod("one"))
    core.create_namespaced_pod(other, make_pod("two"))

    lines = _raw_watch(raw, f"/api/v1/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1")

    added = {
        (line["object"]["metadata"]["namespace"], line["object"]["metadata"]["name"])
        for line in lines
        if line["type"] == "ADDED"
    }
    assert {(namespace, "one"), (other, "two")} <= added


def test_each_event_is_its_own_chunk(sim: ThreadSimulator, namespace: str, core, make_pod) -> None:
    import socket
    from urllib.parse import urlparse

    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    for index in range(3):
        core.create_namespaced_pod(namespace, make_pod(f"k{index}"))
    target = urlparse(sim.url)
    path = f"/api/v1/namespaces/{namespace}/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1"
    context = sim.ssl_context()
    assert context is not None
    token = sim.token
    with socket.create_connection((target.hostname, target.port), timeout=5) as plain, \
            context.wrap_socket(plain, server_hostname=target.hostname) as conn:
        conn.sendall(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        received = b""
        while data := conn.recv(65536):
            received += data
    head, framed = received.split(b"\r\n\r\n", 1)

    chunks: list[bytes] = []
    rest = framed
    while rest:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(rest[:size])
        rest = rest[size + 2 :]
    assert b"Transfer-Encoding: chunked" in head
    assert b"Content-Type: application/json" in head
    assert len(chunks) >= 3
    assert all(chunk.count(b"\n") == 1 and chunk.endswith(b"\n") for chunk in chunks)


def test_node_watch_lists_the_nodes(raw) -> None:
    lines = _raw_watch(raw, "/api/v1/nodes?watch=1&timeoutSeconds=1")

    assert len([line for line in lines if line["type"] == "ADDED"]) == 3
    assert all(line["object"]["kind"] == "Node" for line in lines)


def test_watch_of_one_pod_by_name_path(
    raw, core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("solo"))
    core.create_namespaced_pod(namespace, make_pod("other"))

    lines = _raw_watch(raw, f"/api/v1/watch/namespaces/{namespace}/pods/solo?timeoutSeconds=1")

    assert {line["object"]["metadata"]["name"] for line in lines} == {"solo"}


def test_version_from_an_earlier_simulator_run_is_expired(raw, namespace: str) -> None:
    # A restarted simulator starts its counter past every version an earlier run handed out.
    lines = _raw_watch(raw, f"/api/v1/namespaces/{namespace}/pods?watch=1&resourceVersion=5")

    assert lines[0]["type"] == "ERROR"
    assert lines[0]["object"]["code"] == 410


def test_version_from_the_future_is_504_after_waiting(
    raw, core: client.CoreV1Api, namespace: str
) -> None:
    future = int(core.list_namespaced_pod(namespace).metadata.resource_version) + 10**9

    code, body = raw.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods?watch=1&resourceVersion={future}"
    )

    assert code == 504
    assert body["reason"] == "Timeout"
    assert body["message"].startswith(f"Too large resource version: {future}, current: ")
    assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
