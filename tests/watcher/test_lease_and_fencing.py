"""The lease and the fenced publish script, against a real Redis."""

from __future__ import annotations

import time

import pytest
import redis
from watcher_support import new_key, stream_events

from podfleet.contracts.events import EventKind, EventSource, TaskEvent
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.workers.watcher.lease import LeaseLost, WatcherLease, current_holder
from podfleet.workers.watcher.publisher import Batch, FencedPublisher, pod_records_key


def event(executor: str = "exec-a") -> TaskEvent:
    return TaskEvent(key=new_key(), launch_id="l1", executor_id=executor, kind=EventKind.STATE,
                     source=EventSource.WATCHER, state=TaskState.RUNNING, pod_name="p",
                     namespace="default", pod_uid="u1")


def test_only_one_of_two_contenders_acquires(client: redis.Redis, keys: RedisKeys) -> None:
    first = WatcherLease(client, keys, lease_seconds=5)
    second = WatcherLease(client, keys, lease_seconds=5)
    assert first.try_acquire() is True
    assert second.try_acquire() is False
    holder = current_holder(client, keys)
    assert holder is not None and holder.holder == first.holder
    assert holder.token == first.token


def test_renewed_lease_outlives_its_lease_time(client: redis.Redis, keys: RedisKeys) -> None:
    # Given a lease of 0.5 s renewed in the background
    lease = WatcherLease(client, keys, lease_seconds=0.5)
    assert lease.try_acquire()
    lease.start_renewing()
    try:
        # When three lease times pass
        time.sleep(1.5)
        # Then it is still held, and nobody else can take it
        assert lease.held
        assert not WatcherLease(client, keys, lease_seconds=0.5).try_acquire()
    finally:
        lease.release()


def test_expired_lease_goes_to_the_next_with_a_larger_token(client: redis.Redis,
                                                            keys: RedisKeys) -> None:
    old = WatcherLease(client, keys, lease_seconds=0.3)
    assert old.try_acquire()
    time.sleep(0.4)  # not renewed: expires
    new = WatcherLease(client, keys, lease_seconds=5)
    assert new.try_acquire()
    assert new.token is not None and old.token is not None and new.token > old.token
    assert not old.held
    assert old.renew() is False


def test_release_frees_the_lease_at_once(client: redis.Redis, keys: RedisKeys) -> None:
    lease = WatcherLease(client, keys, lease_seconds=30)
    assert lease.try_acquire()
    lease.release()
    assert current_holder(client, keys) is None
    assert WatcherLease(client, keys, lease_seconds=30).try_acquire()


def test_publish_writes_events_records_and_rv_together(client: redis.Redis,
                                                       keys: RedisKeys) -> None:
    lease = WatcherLease(client, keys, lease_seconds=5)
    assert lease.try_acquire()
    publisher = FencedPublisher(client, keys, "default", lease)
    batch = Batch(records={"u1": "S", "u2": None}, resource_version="42")
    batch.add(event("exec-a"), time.monotonic())
    batch.add(event("exec-b"), time.monotonic())
    client.hset(pod_records_key(keys, "default"), "u2", "P")
    publisher.publish(batch)
    assert len(stream_events(client, keys, "exec-a")) == 1
    assert len(stream_events(client, keys, "exec-b")) == 1
    assert client.hgetall(pod_records_key(keys, "default")) == {b"u1": b"S"}
    assert publisher.stored_resource_version() == "42"


def test_a_watcher_paused_past_its_lease_cannot_write(client: redis.Redis,
                                                      keys: RedisKeys) -> None:
    # Given watcher A whose lease expired while it was paused, and B that took over
    old = WatcherLease(client, keys, lease_seconds=0.3)
    assert old.try_acquire()
    old_publisher = FencedPublisher(client, keys, "default", old)
    old_publisher.publish(Batch(resource_version="10"))
    time.sleep(0.4)
    new = WatcherLease(client, keys, lease_seconds=5)
    assert new.try_acquire()
    FencedPublisher(client, keys, "default", new).publish(Batch(resource_version="20"))
    # When A wakes up still believing its clock (its local deadline says it holds the lease)
    old._deadline = time.monotonic() + 60
    stale = Batch(records={"u9": "S"}, resource_version="15")
    stale.add(event(), time.monotonic())
    # Then Redis refuses the write: no event, no record, the RV stays B's
    with pytest.raises(LeaseLost):
        old_publisher.publish(stale)
    assert stream_events(client, keys) == []
    assert client.hlen(pod_records_key(keys, "default")) == 0
    assert client.get(keys.watcher_resource_version("default")) == b"20"
    assert old.lost.is_set() and new.held


def test_a_retried_batch_is_written_once(client: redis.Redis, keys: RedisKeys) -> None:
    # Given a batch whose first attempt reached Redis but whose answer was lost
    lease = WatcherLease(client, keys, lease_seconds=5)
    assert lease.try_acquire()
    publisher = FencedPublisher(client, keys, "default", lease)
    batch = Batch(resource_version="5")
    batch.add(event(), time.monotonic())
    assert lease.token is not None
    script_keys, args = publisher._arguments(batch, lease.token, f"{lease.token}:1")
    # When the same call is sent twice
    first = publisher._script(keys=script_keys, args=args)
    second = publisher._script(keys=script_keys, args=args)
    # Then the second is recognised and writes nothing
    assert (first, second) == (1, 2)
    assert len(stream_events(client, keys)) == 1
