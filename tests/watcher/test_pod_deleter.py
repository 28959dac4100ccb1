"""The pod deleter lives as long as its watcher's lease: a moment in which the lease may have
expired by the watcher's own clock (a renewal late on a starved CPU) holds the deletes back,
and once the renewal lands they go on. A real simulator and a real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from watcher_support import new_key, task_pod, wait_until

from podfleet.contracts.redis_keys import RedisKeys
from podfleet.kube.client import KubeClient
from podfleet.settings import DeletePolicy
from podfleet.workers.watcher.deleter import PodDeleter
from podfleet.workers.watcher.lease import WatcherLease
from podfleet.workers.watcher.phases import Stage


@pytest.fixture
def lease(client: redis.Redis, keys: RedisKeys) -> Iterator[WatcherLease]:
    held = WatcherLease(client, keys, lease_seconds=30)
    assert held.try_acquire()
    yield held
    held.release()


def _created_pod(kube: KubeClient) -> tuple[str, str]:
    pod = kube.create_pod("default", task_pod(new_key()))
    return pod["metadata"]["name"], pod["metadata"]["uid"]


def _hand_over(deleter: PodDeleter, kube: KubeClient) -> str:
    name, uid = _created_pod(kube)
    assert deleter.hand_over("default", name, uid, Stage.SUCCEEDED)
    return name


def test_a_lease_that_lapses_for_a_moment_only_delays_the_deletes(
        kube: KubeClient, lease: WatcherLease) -> None:
    deleter = PodDeleter(kube, lease, policy=DeletePolicy.ALWAYS, linger_seconds=0).start()
    try:
        first = _hand_over(deleter, kube)
        wait_until(lambda: kube.get_pod("default", first) is None, 10, "the first delete")
        # Given a renewal so late that the watcher's own clock says the lease may be gone
        lease._deadline = time.monotonic() - 1  # as a renewal that did not land in time
        # When a pod is handed over in that moment
        second = _hand_over(deleter, kube)
        time.sleep(0.5)
        # Then it is not deleted while the lease is in doubt
        assert kube.get_pod("default", second) is not None
        # And once the renewal lands it is
        assert lease.renew()
        wait_until(lambda: kube.get_pod("default", second) is None, 10,
                   "the delete held back by the lapse")
    finally:
        deleter.stop()


def test_a_lost_lease_ends_the_deleter_and_deletes_nothing_more(
        kube: KubeClient, lease: WatcherLease) -> None:
    deleter = PodDeleter(kube, lease, policy=DeletePolicy.ALWAYS, linger_seconds=0).start()
    try:
        # Given a watcher whose lease was taken over
        lease.mark_lost("taken over")
        # When a pod is handed over after that
        name = _hand_over(deleter, kube)
        # Then the deleter ends and the pod stays for the next lease holder
        assert deleter._thread is not None
        deleter._thread.join(5)
        assert not deleter._thread.is_alive()
        assert kube.get_pod("default", name) is not None
    finally:
        deleter.stop()
