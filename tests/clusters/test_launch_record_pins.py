"""Launch records say where a launch's create may have gone, so it is never sent to two
clusters: pinned just before a create, unpinned only when no pod can exist there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from podfleet.contracts.redis_keys import RedisKeys
from podfleet.workers.launch_records import CLAIMED, CREATED, LaunchRecords, PriorLaunch

LAUNCH = "0" * 32


@pytest.fixture
def records(redis_url: str) -> Iterator[LaunchRecords]:
    client = redis.Redis.from_url(redis_url)
    yield LaunchRecords(client, RedisKeys("pf"))
    client.close()


def test_a_launch_pinned_to_one_cluster_cannot_be_pinned_to_another(
        records: LaunchRecords) -> None:
    assert records.claim([LAUNCH]) == {}
    assert records.pin([LAUNCH], "east") == {}
    assert records.pin([LAUNCH], "east") == {}  # again, by the same cluster: fine
    assert records.pin([LAUNCH], "west") == {LAUNCH: PriorLaunch(CLAIMED, None, "east")}


def test_a_redelivery_finds_the_cluster_its_launch_is_pinned_to(
        records: LaunchRecords) -> None:
    records.claim([LAUNCH])
    records.pin([LAUNCH], "east")
    assert records.claim([LAUNCH]) == {LAUNCH: PriorLaunch(CLAIMED, None, "east")}


def test_unpinned_by_its_own_cluster_only_a_launch_may_move(records: LaunchRecords) -> None:
    records.claim([LAUNCH])
    records.pin([LAUNCH], "east")
    records.unpin([LAUNCH], "west")
    assert records.pin([LAUNCH], "west") != {}
    records.unpin([LAUNCH], "east")
    assert records.pin([LAUNCH], "west") == {}


def test_a_finished_launch_says_where_its_pod_was_made(records: LaunchRecords) -> None:
    records.finish([(LAUNCH, CREATED, "uid-1", "west")])
    assert records.pin([LAUNCH], "east") == {LAUNCH: PriorLaunch(CREATED, "uid-1", "west")}


def test_a_record_written_before_clusters_is_the_default_clusters(
        records: LaunchRecords) -> None:
    records.redis.set(records.keys.launch_record(LAUNCH), "created:uid-0")
    assert records.finished([LAUNCH]) == {LAUNCH: PriorLaunch(CREATED, "uid-0", "default")}
    records.finish([(LAUNCH, CREATED, "uid-0", "default")])
    assert records.redis.get(records.keys.launch_record(LAUNCH)) == b"created:uid-0"
