"""The admission pending view, kept by the watcher: pods it sees Pending are confirmed, pods
that start or go are removed, and a relist — after a takeover, or after Redis restarted
empty — rebuilds it from the pod list, keeping the reservations a list cannot show yet."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from watcher_support import new_key, task_pod

from podfleet.contracts.redis_keys import RedisKeys
from podfleet.kube.client import KubeClient
from podfleet.local.waiting import wait_for
from podfleet.settings import Settings
from podfleet.simulator.cluster import fate
from podfleet.simulator.server import RunningSimulator
from podfleet.workers.watcher.actor import WatcherSupervisor

SLOW_START = {fate.START_DELAY: "600"}  # stays Pending for the whole test
QUICK = {fate.START_DELAY: "0.01", fate.DURATION: "600"}  # Running at once, for long


class WatcherRun:
    """A watcher supervisor (as in every worker process) on a Redis; stopped and started at
    will, the way a takeover replaces one watcher by another."""

    def __init__(self, sim: RunningSimulator, redis_url: str, tmp_path: Path) -> None:
        self.keys = RedisKeys(f"t{uuid.uuid4().hex[:8]}")
        kubeconfig = sim.write_kubeconfig(str(tmp_path / "kubeconfig"))
        self.settings = Settings.from_env({
            "PODFLEET_REDIS_URL": redis_url, "PODFLEET_REDIS_PREFIX": self.keys.prefix,
            "PODFLEET_KUBECONFIG": str(kubeconfig), "PODFLEET_WATCHER_LEASE_SECONDS": "1",
            "PODFLEET_DELETE_POLICY": "never", "PODFLEET_LOG_ARCHIVE": "off"})
        self.client = redis.Redis.from_url(redis_url)
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WatcherRun:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=WatcherSupervisor(self.settings).run,
                                        args=(self._stop,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._stop is not None and self._thread is not None:
            self._stop.set()
            self._thread.join(10)

    def view(self) -> dict[str, float]:
        """Pod name -> score of the default namespace's pending view."""
        return {name.decode(): score for name, score in self.client.zrange(
            self.keys.admission_pending("default"), 0, -1, withscores=True)}

    def confirmed(self) -> set[str]:
        return {name for name, score in self.view().items() if score == float("inf")}

    def close(self) -> None:
        self.stop()
        self.client.close()


@pytest.fixture
def run(sim: RunningSimulator, redis_url: str, tmp_path: Path) -> Iterator[WatcherRun]:
    made = WatcherRun(sim, redis_url, tmp_path)
    yield made
    made.close()


def create(kube: KubeClient, fates: list[dict[str, str]]) -> list[str]:
    names = []
    for pod_fate in fates:
        pod = task_pod(new_key(), fate=pod_fate)
        kube.create_pod("default", pod)
        names.append(pod["metadata"]["name"])
    return names


def test_pending_pods_are_confirmed_and_started_ones_removed(run: WatcherRun,
                                                            kube: KubeClient) -> None:
    # Given a watcher, and a launcher's reservation of a pod about to start
    run.start()
    quick = task_pod(new_key(), fate=QUICK)
    run.client.zadd(run.keys.admission_pending("default"), {quick["metadata"]["name"]: 1e15})
    # When that pod and three that stay Pending are created
    kube.create_pod("default", quick)
    slow = create(kube, [SLOW_START] * 3)
    # Then the view holds exactly the three Pending pods, confirmed
    wait_for(lambda: run.view() == dict.fromkeys(slow, float("inf")), 30,
             f"the view to hold {slow}")


def test_a_relist_replaces_the_confirmed_view_and_keeps_fresh_reservations(
        run: WatcherRun, kube: KubeClient) -> None:
    # Given a watcher that confirmed two Pending pods, then stopped
    run.start()
    slow = create(kube, [SLOW_START] * 2)
    wait_for(lambda: run.confirmed() == set(slow), 30, "the pods confirmed")
    run.stop()
    # ... a confirmed name no pod has (a stale view), a fresh reservation of a create in
    # flight, and no stored resourceVersion (the next watcher must relist)
    pending_key = run.keys.admission_pending("default")
    run.client.zadd(pending_key, {"ghost": float("inf"), "in-flight": 1e15})
    run.client.delete(run.keys.watcher_resource_version("default"))
    # When another watcher takes over and relists
    run.start()
    # Then the ghost is gone, the listed pods are confirmed, the reservation is kept
    wait_for(lambda: run.view() == {**dict.fromkeys(slow, float("inf")), "in-flight": 1e15},
             30, "the view rebuilt from the list")


def test_a_redis_restarted_empty_gets_its_view_back(private_redis: Any, sim: RunningSimulator,
                                                    kube: KubeClient, tmp_path: Path) -> None:
    # Given a watcher that confirmed three Pending pods
    run = WatcherRun(sim, private_redis.url, tmp_path).start()
    try:
        slow = create(kube, [SLOW_START] * 3)
        wait_for(lambda: run.confirmed() == set(slow), 30, "the pods confirmed")
        # When Redis restarts empty (view, records and resourceVersion gone)
        private_redis.restart()
        # Then the watcher relists and the view holds the three pods again
        wait_for(lambda: _quiet(run.confirmed) == set(slow), 60, "the view rebuilt")
    finally:
        run.close()


def _quiet(read: Any) -> Any:
    """``read()``, or None while Redis is still coming back."""
    try:
        return read()
    except redis.RedisError:
        return None


def test_a_queues_pool_holds_its_pods_until_they_finish(run: WatcherRun,
                                                        kube: KubeClient) -> None:
    from podfleet.contracts.naming import QUEUE_ANNOTATION

    # Given a watcher, and pods of queue etl: one that runs for long, one that ends at once
    run.start()
    running = task_pod(new_key(), fate=QUICK)
    done = task_pod(new_key(), fate={fate.START_DELAY: "0.01", fate.DURATION: "0.05"})
    for pod in (running, done):
        pod["metadata"]["annotations"][QUEUE_ANNOTATION] = "etl"
        kube.create_pod("default", pod)
    pool_key = run.keys.admission_active("etl", "default")

    def pool() -> set[str]:
        return {n.decode() for n in run.client.zrange(pool_key, 0, -1)}

    # Then etl's pool holds the running pod and not the finished one
    wait_for(lambda: pool() == {running["metadata"]["name"]} and not run.view(), 30,
             "etl's pool to hold only its running pod")
