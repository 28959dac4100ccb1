"""Clusters fail on their own: one whose API server is gone holds only its own launches,
and each cluster's watcher is taken over on its own when its worker dies."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusters_support import Clusters

from podfleet.broker import queue_sizes
from podfleet.contracts.states import TaskState
from podfleet.local.redis_server import RedisServer
from podfleet.local.waiting import wait_for
from podfleet.simulator.server import ProcessSimulator, start_simulator


@pytest.fixture
def three(redis_server: RedisServer, tmp_path: Path) -> Iterator[Clusters]:
    world = Clusters(redis_server.url, tmp_path, {"a": {}, "b": {}, "c": {}},
                     PODFLEET_REDIS_PREFIX=f"pf-{uuid.uuid4().hex[:8]}")
    yield world
    world.close()


def kill(world: Clusters, cluster: str) -> None:
    """SIGKILL the cluster's simulator: its API server stops answering mid-run."""
    sim = world.sims[cluster]
    assert isinstance(sim, ProcessSimulator)
    sim.process.kill()
    sim.process.wait(10)


def restart(world: Clusters, cluster: str) -> None:
    """Start the cluster's API server again where it was (same port, CA and token; its pods
    are gone with the old process), as a cluster that comes back."""
    old = world.sims[cluster]
    old.stop()
    port = int(old.url.rsplit(":", 1)[1].split("/")[0])
    world.sims[cluster] = start_simulator(
        dataclasses.replace(old.config, port=port), mode="process",
        log=world.tmp_path / f"sim-{cluster}-again.log")


@pytest.mark.slow
def test_a_killed_cluster_holds_only_its_own_launches(three: Clusters) -> None:
    three.local.workers.start(1, 4, watcher=False)
    kill(three, "c")
    only_c = [three.request(n, ("c",)) for n in range(5)]
    elsewhere = [three.request(10 + n, ("a", "b")) for n in range(10)]
    c_first = [three.request(30 + n, ("c", "a")) for n in range(10)]
    three.send(only_c + elsewhere + c_first, batch_size=25)
    movable = {r.launch_id for r in elsewhere + c_first}
    try:
        wait_for(lambda: movable <= set(three.launched()), timeout=90,
                 what="the launches allowed elsewhere to be launched")
    except AssertionError:
        print([(e.launch_id[:6], e.cluster, e.state, e.reason) for e in three.events()])
        print(three.local.workers.logs()[-5000:])
        raise
    events = three.launched()
    assert {events[r.launch_id].cluster for r in c_first} == {"a"}
    placed = Counter(i for name in ("a", "b") for i in three.launch_ids_on(name))
    assert movable <= set(placed) and set(placed.values()) == {1}  # 0 duplicates
    # c's own launches wait for it: neither launched nor failed.
    time.sleep(3)
    assert not {r.launch_id for r in only_c} & {e.launch_id for e in three.events()}
    assert queue_sizes(three.broker, three.settings.launch.queue)["dead"] == 0


@pytest.mark.slow
def test_launches_a_cluster_held_are_created_there_once_it_returns(three: Clusters) -> None:
    three.local.workers.start(1, 4, watcher=False)
    kill(three, "c")
    held = [three.request(n, ("c",)) for n in range(4)]
    three.send(held)
    time.sleep(4)
    assert not three.events()  # waiting for c, not failed
    restart(three, "c")
    ids = {r.launch_id for r in held}
    wait_for(lambda: ids <= set(three.launched()), timeout=90,
             what="the held launches to be created on c")
    assert {three.launched()[i].cluster for i in ids} == {"c"}
    assert sorted(three.launch_ids_on("c")) == sorted(ids)  # once each


@pytest.mark.slow
def test_each_clusters_watcher_is_taken_over_on_its_own(three: Clusters) -> None:
    first = three.local.workers.start(1, 2)
    wait_for(lambda: all(three.lease_holder(c) for c in "abc"), timeout=60,
             what="a watcher of every cluster")
    before = {c: three.lease_holder(c) for c in "abc"}
    three.local.workers.start(1, 2)
    kill(three, "c")  # c's watcher can only retry; a's and b's must not notice
    three.local.workers.kill(first)
    wait_for(lambda: all((h := three.lease_holder(c)) and h != before[c] for c in "abc"),
             timeout=30, what="every cluster's lease taken over by the survivor")
    # The new watchers publish their own cluster's pods, naming it.
    requests = [three.request(n, (c,)) for n, c in enumerate("ab")]
    three.send(requests)
    wait_for(lambda: {(e.launch_id, e.cluster) for e in three.events()
                      if e.state is TaskState.RUNNING}
             >= {(r.launch_id, r.clusters[0]) for r in requests}, timeout=60,
             what="a RUNNING event of each cluster's pod")
