"""Faults in the launch queue and in Redis itself, at the default delete policy: garbage
entries are quarantined without costing good messages anything, and a Redis that dies while
launches are in flight loses none of them."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import dramatiq
import pytest
from pipeline_support import Pipeline, submit_tasks, wait_for

from podfleet.broker import LAUNCH_ACTOR_NAME
from podfleet.contracts.states import TaskState
from podfleet.local.redis_server import RedisServer

QUEUE = "podfleet.launch"


def _queue_key(pipeline: Pipeline, suffix: str = "") -> str:
    return f"{pipeline.prefix}:dramatiq:{QUEUE}{suffix}"


def test_a_garbage_queue_entry_is_dead_lettered_and_good_launches_go_on(
        pipeline: Pipeline) -> None:
    # Given garbage at the head of the launch queue, good launch messages behind it, and one
    # live worker that prefetches them together
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    garbage_id = str(uuid.uuid4())
    pipeline.redis.hset(_queue_key(pipeline, ".msgs"), garbage_id, b"\x00not a message{")
    pipeline.redis.rpush(_queue_key(pipeline), garbage_id)
    executor = pipeline.started_executor(batch_size=5)
    keys = submit_tasks(executor, 30, "0.2")
    pipeline.start_worker()
    # When it works through the queue
    pipeline.run_until_finished(executor, keys, timeout=60)
    # Then every good task ran once, well before any heartbeat-based redelivery could help
    assert pipeline.terminal_reports() == Counter({(k, TaskState.SUCCESS): 1 for k in keys})
    assert pipeline.stats().creates.accepted == len(keys)
    # ... and the garbage sits in the dead-letter set, with a reason in the worker's log
    dead = pipeline.redis.zrange(_queue_key(pipeline, ".XQ"), 0, -1)
    assert [d.decode() for d in dead] == [garbage_id]
    assert "dead-lettered an undecodable entry" in pipeline.worker_logs()
    pipeline.check_workers_alive()


def test_redis_killed_mid_launch_and_restarted_from_its_aof_loses_no_task_and_makes_no_second_pod(
        private_pipeline: Pipeline, private_redis: RedisServer) -> None:
    pipeline = private_pipeline
    # Given one worker launching slowly (10 pods/s), so launches are in flight in its threads
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker(PODFLEET_LAUNCH_RATE="10")
    executor = pipeline.started_executor(batch_size=20)
    keys = submit_tasks(executor, 40, "0.2")
    wait_for(lambda: pipeline.stats().creates.accepted >= 5, timeout=60,
             what="launches in flight")
    # When Redis is SIGKILLed mid-launch, the scheduler loop keeps syncing through the outage,
    # and Redis comes back from its append-only file on the same port
    private_redis.kill()
    assert pipeline.stats().creates.accepted < len(keys), "the kill must come mid-launch"
    outage_ends = time.monotonic() + 3
    while time.monotonic() < outage_ends:
        executor.sync()  # must not raise
        time.sleep(0.2)
    private_redis.start()
    # Then every task finishes exactly once, with one pod each
    pipeline.run_until_finished(executor, keys, timeout=120)
    assert pipeline.terminal_reports() == Counter({(k, TaskState.SUCCESS): 1 for k in keys})
    assert pipeline.stats().creates.accepted == len(keys)
    assert "Redis unreachable mid-launch" in pipeline.worker_logs()


@pytest.mark.slow
def test_a_message_without_a_redis_message_id_is_dead_lettered_once_not_rerun(
        pipeline: Pipeline) -> None:
    # Given a decodable launch message pushed into the queue by hand, without the
    # redis_message_id option dramatiq's broker acks by
    entry_id = str(uuid.uuid4())
    message = dramatiq.Message(queue_name=QUEUE, actor_name=LAUNCH_ACTOR_NAME,
                               args=({"v": 1, "body": "{}", "sig": "0"},), kwargs={},
                               options={})
    pipeline.redis.hset(_queue_key(pipeline, ".msgs"), entry_id, message.encode())
    pipeline.redis.lpush(_queue_key(pipeline), entry_id)
    # When a worker consumes the queue
    pipeline.start_worker()
    # Then the entry is dead-lettered, no worker holds it unacked (it would run again after
    # every restart), and the worker's log says why
    wait_for(lambda: pipeline.redis.zrange(_queue_key(pipeline, ".XQ"), 0, -1)
             == [entry_id.encode()], timeout=30, what="the entry in the dead-letter set")
    held = [key for key in pipeline.redis.scan_iter(f"{pipeline.prefix}:dramatiq:__acks__.*")
            if pipeline.redis.sismember(key, entry_id)]
    assert held == []
    assert "it has no redis_message_id option" in pipeline.worker_logs()
    pipeline.check_workers_alive()
