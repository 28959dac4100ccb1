"""The store contract the simulated cluster codes against (see simulator/INTERFACE.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from podfleet.simulator.store import ExpiredError, ObjectStore, StoreEvent


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "i"}], **spec},
        "status": {"phase": "Pending"},
    }


def test_every_change_bumps_the_resource_version_by_one() -> None:
    store = ObjectStore()

    created = store.create("pods", _pod("a"))
    bound = store.bind_pod("default", "a", "n1")
    deleted = store.delete_pod("default", "a")

    assert [created.rv, bound.rv, deleted.rv] == [1, 2, 3]
    assert store.resource_version == 3


def test_listeners_see_events_in_order_even_when_they_mutate() -> None:
    store = ObjectStore()
    first: list[tuple[str, int]] = []
    second: list[tuple[str, int]] = []

    def binder(event: StoreEvent) -> None:
        first.append((event.type, event.rv))
        if event.type == "ADDED":
            store.bind_pod(event.record.namespace, event.record.name, "n1")

    store.add_listener(binder)
    store.add_listener(lambda event: second.append((event.type, event.rv)))
    store.create("pods", _pod("a"))

    assert first == [("ADDED", 1), ("MODIFIED", 2)]
    assert second == first


def test_modified_event_carries_the_previous_state() -> None:
    store = ObjectStore()
    events: list[StoreEvent] = []
    store.add_listener(events.append)
    store.create("pods", _pod("a"))

    store.set_pod_status("default", "a", {"phase": "Running"})

    assert events[-1].prev is not None
    assert events[-1].prev.phase == "Pending"
    assert events[-1].record.phase == "Running"


def test_indexes_follow_binding_and_deletion() -> None:
    store = ObjectStore()
    store.create("pods", _pod("a"))
    store.create("pods", _pod("b"))

    store.bind_pod("default", "a", "n1")

    assert [r.name for r in store.unscheduled_pods()] == ["b"]
    assert [r.name for r in store.pods_on_node("n1")] == ["a"]
    store.delete_pod("default", "a")
    assert store.pods_on_node("n1") == []
    assert store.pods_by_phase() == {"Pending": 1}
    assert store.peak_count("pods") == 2


def test_events_after_a_version_outside_the_window_expire() -> None:
    store = ObjectStore(history_events=3)
    for index in range(6):
        store.create("pods", _pod(f"p{index}"))

    kept = store.events_after(3)

    assert [e.rv for e in kept] == [4, 5, 6]
    with pytest.raises(ExpiredError) as info:
        store.events_after(2)
    assert str(info.value) == "too old resource version: 2 (3)"


def test_update_returning_false_changes_nothing() -> None:
    store = ObjectStore()
    store.create("pods", _pod("a"))

    unchanged = store.update_pod("default", "a", lambda obj: False)

    assert unchanged is not None and unchanged.rv == 1
    assert store.resource_version == 1


def test_scheduled_deletion_waits_for_finalizers() -> None:
    async def scenario() -> tuple[bool, bool]:
        store = ObjectStore()
        pod = _pod("f")
        pod["metadata"]["finalizers"] = ["example.com/keep"]
        store.create("pods", pod)

        def mark(obj: dict[str, Any]) -> None:
            obj["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"

        store.update_pod("default", "f", mark)
        store.schedule_deletion("default", "f", store.get("pods", "default", "f").uid, 0)
        await asyncio.sleep(0.01)
        kept = store.get("pods", "default", "f") is not None

        def unfinalize(obj: dict[str, Any]) -> None:
            obj["metadata"]["finalizers"] = []

        store.update_pod("default", "f", unfinalize)
        return kept, store.get("pods", "default", "f") is None

    kept, gone = asyncio.run(scenario())

    assert kept
    assert gone


@pytest.mark.parametrize("status_last", [True, False])
def test_a_status_write_stores_what_editing_the_parsed_pod_would(status_last: bool) -> None:
    # A status whose own fields look like a nested status object must not confuse the splice
    store = ObjectStore(start_rv=99)
    pod = _pod("a")
    if not status_last:
        pod = {"status": pod.pop("status"), **pod}
    store.create("pods", pod)
    statuses = [{"phase": "Running", "x": {"status": {"n": n}}} for n in range(3)]

    for status in statuses:
        before = store.get("pods", "default", "a")
        assert before is not None
        after = store.set_pod_status("default", "a", status)
        assert after is not None
        expected = before.object()
        expected["status"] = status
        expected["metadata"]["resourceVersion"] = str(after.rv)
        assert (after.object(), after.phase) == (expected, "Running")
        assert list(after.object()) == list(expected)  # field order kept too


@pytest.mark.parametrize("spec", [{"containers": [{"name": "c", "image": "i"}]}, {}])
def test_a_binding_with_status_stores_what_editing_the_parsed_pod_would(
    spec: dict[str, Any]
) -> None:
    store = ObjectStore(start_rv=7)
    pod = _pod("a")
    pod["spec"] = spec
    store.create("pods", pod)
    before = store.get("pods", "default", "a")
    assert before is not None
    status = {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}

    after = store.bind_pod_with_status("default", "a", "node-1", status)

    assert after is not None
    expected = before.object()
    expected["spec"]["nodeName"] = "node-1"
    expected["status"] = status
    expected["metadata"]["resourceVersion"] = str(after.rv)
    assert after.object() == expected
    assert [r.name for r in store.pods_on_node("node-1")] == ["a"]
    assert store.unscheduled_pods() == []
