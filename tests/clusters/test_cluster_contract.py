"""Clusters' shared contract: the placement rule, the wire fields and the per-cluster keys."""

from __future__ import annotations

import pytest
from launch_requests import launch_request

from podfleet.contracts.clusters import (
    DEFAULT_CLUSTER,
    ClusterSpec,
    NoClusterMatches,
    Placement,
    PlacementError,
    UnknownCluster,
    eligible_clusters,
)
from podfleet.contracts.events import EventKind, EventSource, TaskEvent
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import (
    InvalidMessage,
    LaunchBatch,
    LaunchRequest,
    new_launch_id,
    open_envelope,
)
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState

SIGNER = MessageSigner(b"k" * 32)
CLUSTERS = (
    ClusterSpec("east", namespaces=("default", "ml"), labels={"gpu": "true", "region": "us"}),
    ClusterSpec("west", namespaces=("*",), labels={"gpu": "true", "region": "eu"}),
    ClusterSpec("cpu", namespaces=("default",), labels={"region": "us"}),
)


def eligible(placement: Placement, *, queue: str | None = None, namespace: str = "default",
             queue_clusters: dict[str, tuple[str, ...]] | None = None) -> tuple[str, ...]:
    return eligible_clusters(placement, queue=queue, namespace=namespace, clusters=CLUSTERS,
                             queue_clusters=queue_clusters or {})


def test_a_task_that_asks_nothing_may_run_on_every_cluster_in_configured_order() -> None:
    assert eligible(Placement()) == ("east", "west", "cpu")


def test_a_named_cluster_is_the_only_one() -> None:
    assert eligible(Placement(cluster="west")) == ("west",)


def test_a_name_that_is_not_configured_is_refused_naming_it() -> None:
    with pytest.raises(UnknownCluster, match="cluster 'north' is not configured "
                                             r"\(configured: east, west, cpu\)"):
        eligible(Placement(cluster="north"))


def test_a_selector_picks_every_cluster_whose_labels_hold_it() -> None:
    assert eligible(Placement(selector={"gpu": "true"})) == ("east", "west")
    assert eligible(Placement(selector={"region": "us"})) == ("east", "cpu")


def test_a_selector_no_cluster_matches_is_refused_naming_it() -> None:
    with pytest.raises(NoClusterMatches, match="cluster_selector gpu=true,region=ap"):
        eligible(Placement(selector={"gpu": "true", "region": "ap"}))


def test_a_queue_with_clusters_limits_its_tasks_and_their_selectors_to_them() -> None:
    lists = {"gpu": ("west", "east")}
    assert eligible(Placement(), queue="gpu", queue_clusters=lists) == ("west", "east")
    assert eligible(Placement(selector={"region": "us"}), queue="gpu",
                    queue_clusters=lists) == ("east",)
    assert eligible(Placement(), queue="etl", queue_clusters=lists) == ("east", "west", "cpu")
    with pytest.raises(NoClusterMatches, match=r"queue 'gpu' \(clusters west\|east\)"):
        eligible(Placement(selector={"region": "none"}), queue="gpu", queue_clusters=lists)


def test_only_clusters_that_watch_the_namespace_are_eligible() -> None:
    assert eligible(Placement(), namespace="ml") == ("east", "west")
    with pytest.raises(NoClusterMatches, match="cluster 'cpu' does not watch namespace 'ml'"):
        eligible(Placement(cluster="cpu"), namespace="ml")


def test_a_placement_by_name_and_by_labels_at_once_is_refused() -> None:
    with pytest.raises(PlacementError, match="not both"):
        Placement(cluster="east", selector={"gpu": "true"})


def test_placement_reads_the_pod_overrides_annotation_which_must_agree() -> None:
    override = {"metadata": {"annotations": {"podfleet.io/cluster": "west"}}}
    assert Placement.from_executor_config({"pod_override": override}).cluster == "west"
    with pytest.raises(PlacementError, match="disagree"):
        Placement.from_executor_config({"pod_override": override, "cluster": "east"})


def test_a_requests_eligible_clusters_travel_signed() -> None:
    batch = LaunchBatch((launch_request(clusters=("west", "east")),))
    opened = open_envelope(batch.seal(SIGNER), SIGNER)
    assert opened.requests[0].clusters == ("west", "east")


def test_a_request_written_before_clusters_existed_means_the_default_cluster() -> None:
    wire = launch_request().to_wire()
    del wire["clusters"]
    assert LaunchRequest.from_wire(wire).clusters == (DEFAULT_CLUSTER,)


@pytest.mark.parametrize("clusters", [[], ["Bad_Name"], ["a", "a"], "east", [1]])
def test_signed_but_invalid_clusters_are_refused(clusters: object) -> None:
    wire = launch_request().to_wire()
    wire["clusters"] = clusters
    with pytest.raises(InvalidMessage, match="clusters"):
        LaunchRequest.from_wire(wire)


def test_an_event_carries_its_cluster_and_an_old_one_reads_as_default() -> None:
    event = TaskEvent(TaskKey("d", "t", "r"), new_launch_id(), "exec-1", EventKind.STATE,
                      EventSource.LAUNCHER, state=TaskState.LAUNCHED, cluster="west")
    fields = event.to_fields()
    assert TaskEvent.from_fields(fields).cluster == "west"
    del fields["cluster"]
    assert TaskEvent.from_fields(fields).cluster == DEFAULT_CLUSTER


def test_the_default_clusters_keys_keep_todays_names_and_others_have_their_own() -> None:
    keys = RedisKeys("pf")
    west = keys.for_cluster("west")
    assert keys.for_cluster(DEFAULT_CLUSTER) == keys
    assert keys.watcher_lease == "pf:watcher:lease"
    assert west.watcher_lease == "pf:cluster:west:watcher:lease"
    assert west.watcher_fence == "pf:cluster:west:watcher:fence"
    assert west.watcher_resource_version("ns") == "pf:cluster:west:watcher:rv:ns"
    assert west.admission_pending("ns") == "pf:cluster:west:admission:pending:ns"
    assert west.rate_limit("launch") == "pf:cluster:west:ratelimit:launch"
    assert west.quota_waiting("ns") == "pf:cluster:west:quota:waiting:ns"


def test_keys_about_tasks_and_executors_are_the_fleets_whatever_the_cluster() -> None:
    keys, west = RedisKeys("pf"), RedisKeys("pf").for_cluster("west")
    assert west.events("e1") == keys.events("e1")
    assert west.launch_record("l1") == keys.launch_record("l1")
    assert west.consumers("q") == keys.consumers("q")
