"""Placement across clusters: by name, spread over the eligible ones, and where there is
room; each launch makes one pod on one cluster, and its events name that cluster."""

from __future__ import annotations

from collections import Counter

from clusters_support import Clusters

from podfleet.local.waiting import wait_for


def launched(world: Clusters, launch_ids: set[str], timeout: float = 90.0) -> dict[str, str]:
    """Launch id -> the cluster its LAUNCHED event names, once all of them are launched."""
    try:
        wait_for(lambda: launch_ids <= set(world.launched()), timeout=timeout,
                 what=f"{len(launch_ids)} launches")
    except AssertionError:
        print(world.local.workers.logs()[-4000:])
        raise
    events = world.launched()
    return {launch_id: events[launch_id].cluster for launch_id in launch_ids}


def pods_by_cluster(world: Clusters) -> dict[str, list[str]]:
    return {name: world.launch_ids_on(name) for name in world.sims}


def test_a_task_named_to_a_cluster_runs_there_only(placement: Clusters) -> None:
    requests = [placement.request(n, ("c",)) for n in range(6)]
    placement.send(requests)
    ids = {r.launch_id for r in requests}
    assert set(launched(placement, ids).values()) == {"c"}
    pods = pods_by_cluster(placement)
    assert ids <= set(pods["c"])
    assert not ids & set(pods["a"] + pods["b"])


def test_tasks_allowed_everywhere_spread_over_the_clusters_one_pod_each(
        placement: Clusters) -> None:
    requests = [placement.request(100 + n, ("b", "c")) for n in range(20)]
    placement.send(requests, batch_size=10)
    ids = {r.launch_id for r in requests}
    where = launched(placement, ids)
    assert set(where.values()) == {"b", "c"}
    pods = pods_by_cluster(placement)
    placed = Counter(i for name in pods for i in pods[name] if i in ids)
    assert set(placed) == ids and set(placed.values()) == {1}  # one pod, on one cluster
    assert all(where[i] == name for name in pods for i in pods[name] if i in ids)


def test_a_cluster_at_its_pending_cap_sends_launches_where_there_is_room(
        placement: Clusters) -> None:
    requests = [placement.request(200 + n, ("a", "b")) for n in range(12)]
    placement.send(requests)
    ids = {r.launch_id for r in requests}
    where = launched(placement, ids)
    pods = pods_by_cluster(placement)
    assert len(pods["a"]) <= 4  # a's cap, over every test of the module
    assert Counter(where.values())["b"] >= 8
    assert all(where[i] == name for name in pods for i in pods[name] if i in ids)
