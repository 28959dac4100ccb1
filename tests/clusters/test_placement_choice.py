"""Where a launch starts: spread by its launch id over its eligible clusters that this
worker has and has not found down, never one it already tried."""

from __future__ import annotations

from collections import Counter

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchRequest, new_launch_id
from podfleet.workers.launcher.placement import ClusterHealth, choose


def request(clusters: tuple[str, ...]) -> LaunchRequest:
    return LaunchRequest(key=TaskKey("d", "t", "r"), launch_id=new_launch_id(),
                         command=("true",), executor_id="e", namespace="default",
                         queued_at=0.0, clusters=clusters)


def test_launches_spread_over_their_clusters_and_each_keeps_its_choice() -> None:
    health = ClusterHealth()
    requests = [request(("a", "b", "c")) for _ in range(300)]
    picks = [choose(r, ("a", "b", "c"), health) for r in requests]
    assert min(Counter(picks).values()) > 60  # about 100 each
    assert picks == [choose(r, ("a", "b", "c"), health) for r in requests]


def test_a_cluster_found_down_or_already_tried_is_not_chosen() -> None:
    health = ClusterHealth(retry_s=(60.0, 60.0))
    health.down("a")
    requests = [request(("a", "b", "c")) for _ in range(50)]
    assert {choose(r, ("a", "b", "c"), health) for r in requests} == {"b", "c"}
    assert {choose(r, ("a", "b", "c"), health, exclude={"b"}) for r in requests} == {"c"}
    health.up("a")
    assert choose(request(("a",)), ("a", "b"), health) == "a"


def test_no_cluster_left_means_none() -> None:
    health = ClusterHealth(retry_s=(60.0, 60.0))
    health.down("b")
    assert choose(request(("a", "b")), ("b",), health) is None  # a: not on this worker
    assert choose(request(("a",)), ("a",), health, exclude={"a"}) is None
