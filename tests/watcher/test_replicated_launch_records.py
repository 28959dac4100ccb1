"""The deleter's launch records reach a replica before any pod goes: behind Sentinel, a
failover promotes a replica that may lag, and a record only the dead primary held would let a
launch message delivered again (its fetch lost with the primary) create a finished pod's name a
second time. Real redis-servers: a primary, its replica, three sentinels."""

from __future__ import annotations

import os
import signal
import time
import uuid

import redis

from podfleet.contracts.clusters import DEFAULT_CLUSTER
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.local.redis_sentinel import SentinelGroup
from podfleet.local.redis_server import RedisServer
from podfleet.redis_client import connect
from podfleet.workers.launch_records import CREATED, LaunchRecords


def _records(url: str) -> tuple[LaunchRecords, RedisKeys]:
    keys = RedisKeys(f"pf-{uuid.uuid4().hex[:8]}")
    return LaunchRecords(connect(url, socket_timeout=10), keys), keys


def test_a_record_written_for_a_delete_is_on_the_replica_when_the_write_returns(
        sentinels: SentinelGroup) -> None:
    records, keys = _records(sentinels.url)
    replica = redis.Redis(host=sentinels.replica.host, port=sentinels.replica.port)
    # When the deleter records 50 launches as created
    launches = [f"launch-{n}" for n in range(50)]
    replicated = records.finish_replicated((launch, CREATED, f"uid-{launch}", DEFAULT_CLUSTER)
                                           for launch in launches)
    # Then the write says they were replicated, and the replica holds every one already
    assert replicated
    held = replica.mget([keys.launch_record(launch) for launch in launches])
    assert all(value is not None and value.startswith(b"created:") for value in held)


def test_a_replica_that_does_not_answer_holds_the_deletes_back(
        sentinels: SentinelGroup) -> None:
    records, _ = _records(sentinels.url)
    replica_pid = sentinels.replica.pid
    assert replica_pid is not None
    # Given a replica that is connected but stopped (it acknowledges nothing)
    os.kill(replica_pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        # When the deleter records a launch, waiting half a second for a replica
        replicated = records.finish_replicated([("launch-x", CREATED, "uid-x", DEFAULT_CLUSTER)],
                                               timeout_s=0.5)
        waited = time.monotonic() - started
    finally:
        os.kill(replica_pid, signal.SIGCONT)
    # Then it says so (the deleter keeps the pod and tries again) after its wait
    assert not replicated
    assert waited >= 0.4


def test_a_redis_without_replicas_records_at_once() -> None:
    server = RedisServer().start()
    try:
        records, keys = _records(server.url)
        started = time.monotonic()
        assert records.finish_replicated([("launch-y", CREATED, "uid-y", DEFAULT_CLUSTER)])
        assert time.monotonic() - started < 1.0
        assert records.redis.get(keys.launch_record("launch-y")) == b"created:uid-y"
    finally:
        server.close()
