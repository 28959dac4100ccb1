"""The event store's bounds: a TTL renewed by each write, and a cap on how many are kept,
both removing events with ordinary DELETED changes; and event recording switched off."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from cluster_support import FAST, pod_body, unique, wait_for
from kubernetes import client

from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.eventstore import EventStore
from podfleet.simulator.server import start_simulator
from podfleet.simulator.store import EVENTS


def _event(name: str) -> dict[str, Any]:
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Started", "message": "Started container main", "type": "Normal"}


def _names(store: EventStore) -> list[str]:
    return [r.name for r in store.objects.list(EVENTS)]


def test_beyond_the_limit_the_oldest_events_are_dropped() -> None:
    store = EventStore(limit=3, ttl_s=3600)
    start = store.resource_version

    for index in range(5):
        store.create(_event(f"e{index}"))

    assert _names(store) == ["e2", "e3", "e4"]
    deleted = [e.record.name for e in store.objects.events_after(start) if e.type == "DELETED"]
    assert deleted == ["e0", "e1"]


def test_an_event_expires_its_ttl_after_its_last_write() -> None:
    store = EventStore(limit=100, ttl_s=0.3)
    store.create(_event("old"))
    store.create(_event("renewed"))
    time.sleep(0.2)

    store.update("default", "renewed", lambda e: e.update(count=2))
    time.sleep(0.15)
    store.expire()

    assert _names(store) == ["renewed"]


def test_with_event_recording_off_a_pod_records_no_events() -> None:
    config = SimulatorConfig(cluster=dataclasses.replace(FAST), record_events=False)
    with start_simulator(config) as sim:
        api_client = sim.api_client()
        core = client.CoreV1Api(api_client)
        name = unique("quiet")
        core.create_namespaced_pod("default", pod_body(name))
        wait_for(lambda: core.read_namespaced_pod(name, "default").status.phase
                 in ("Running", "Succeeded"), what="the pod to start")

        events = core.list_namespaced_event("default").items
        api_client.close()

    assert events == []


def test_the_admin_stats_count_the_events_held() -> None:
    with start_simulator(SimulatorConfig(cluster=dataclasses.replace(FAST))) as sim:
        api_client = sim.api_client()
        core = client.CoreV1Api(api_client)
        name = unique("counted")
        core.create_namespaced_pod("default", pod_body(name))
        wait_for(lambda: len(core.list_namespaced_event("default").items) >= 5,
                 what="its events")

        held = sim.admin.stats().raw["events"]
        listed = core.list_namespaced_event("default")
        api_client.close()

    assert held["current"] == len(listed.items) and held["recording"] is True
    assert str(held["resource_version"]) == listed.metadata.resource_version
