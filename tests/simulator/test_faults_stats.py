"""The admin endpoint's counters: pods by phase, peak pods, watch connections, resets."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from cluster_support import fast_simulator, pod_body, unique, wait_for
from kubernetes import client, watch

from podfleet.simulator.cluster import fate
from podfleet.simulator.server import RunningSimulator

NS = "default"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with fast_simulator() as simulator:
        yield simulator


def test_pods_are_counted_by_phase_and_peak(sim: RunningSimulator, api: client.CoreV1Api) -> None:
    names = [unique("counted") for _ in range(3)]
    api.create_namespaced_pod(NS, pod_body(names[0], {fate.EXIT_CODE: "1"}))
    api.create_namespaced_pod(NS, pod_body(names[1]))
    api.create_namespaced_pod(NS, pod_body(names[2], {fate.DURATION: "30"}))
    wait_for(lambda: sim.admin.stats().pods.by_phase == {"Failed": 1, "Succeeded": 1,
                                                          "Running": 1}, what="phases")

    api.delete_namespaced_pod(names[0], NS)
    stats = sim.admin.stats()

    assert (stats.pods.current, stats.pods.peak) == (2, 3)


def test_reset_keeps_current_pods_as_the_new_peak(
    sim: RunningSimulator, api: client.CoreV1Api
) -> None:
    for _ in range(2):
        api.create_namespaced_pod(NS, pod_body(unique("before")))
    api.delete_namespaced_pod(api.list_namespaced_pod(NS).items[0].metadata.name, NS)

    stats = sim.admin.reset_stats()

    assert (stats.pods.current, stats.pods.peak) == (1, 1)
    assert stats.creates.attempted == 0 and stats.requests == {}


def test_open_watches_are_counted(sim: RunningSimulator, api: client.CoreV1Api) -> None:
    stop = threading.Event()
    watcher = watch.Watch()

    def run() -> None:
        for _ in watcher.stream(api.list_namespaced_pod, NS, timeout_seconds=10):
            if stop.is_set():
                break

    thread = threading.Thread(target=run)
    thread.start()
    try:
        stats = wait_for(lambda: (s := sim.admin.stats()).watches.open == 1 and s,
                         what="the watch to open")
        assert stats.watches.total >= 1
    finally:
        stop.set()
        api.create_namespaced_pod(NS, pod_body(unique("wake")))  # an event ends the loop
        thread.join(10)

    wait_for(lambda: sim.admin.stats().watches.open == 0, what="the watch to close")


def test_requests_are_counted_by_verb_and_code(
    sim: RunningSimulator, api: client.CoreV1Api
) -> None:
    sim.admin.reset_stats()
    api.list_namespaced_pod(NS)
    with pytest.raises(client.ApiException):
        api.read_namespaced_pod("missing", NS)

    stats = sim.admin.stats()

    assert stats.requests["list"] == {200: 1}
    assert stats.requests["get"] == {404: 1}


def test_stored_pods_are_timed_below_the_second_and_reset_with_the_stats(
        sim: RunningSimulator, api: client.CoreV1Api) -> None:
    import time

    from podfleet.simulator.admin import busiest_window

    sim.admin.reset_stats()
    before = time.time()
    names = [unique("timed") for _ in range(3)]
    for name in names:
        api.create_namespaced_pod(NS, pod_body(name))
    with pytest.raises(client.ApiException):  # a rejected create (409) is not timed
        api.create_namespaced_pod(NS, pod_body(names[0]))
    assert [(ns, name) for _, ns, name in sim.admin.creates()] == [(NS, n) for n in names]
    times = sim.admin.create_times()
    assert before <= times[0] <= times[1] <= times[2] <= time.time()
    assert busiest_window(times, window_s=5.0) == (3, times[0])
    sim.admin.reset_stats()
    assert sim.admin.create_times() == []


def test_the_busiest_window_slides_rather_than_aligning_to_seconds() -> None:
    from podfleet.simulator.admin import busiest_window

    # Two creates late in one second and two early in the next: 4 within 0.2 s
    assert busiest_window([0.85, 0.9, 1.0, 1.05, 3.0]) == (4, 0.85)
    assert busiest_window([0.0, 1.0, 2.0]) == (1, 0.0)
    assert busiest_window([]) == (0, 0.0)
