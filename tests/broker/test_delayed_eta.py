"""A delayed launch message's ``eta`` counts from Redis' clock: a worker host whose clock runs
700 s ahead must not write an eta that every other worker holds back for 700 s (a launch it
handed back would wait that long)."""

from __future__ import annotations

import os
import subprocess
import sys

import dramatiq
import redis
from skewed_clock import skewed_clock_env

from podfleet.broker import redis_layout

# Run under the skewed clock: enqueue one launch envelope, delayed 5 s, through the broker
# podfleet's processes use, and print where it went.
PROGRAM = """
import sys
from podfleet.broker import enqueue_envelopes, make_broker
from podfleet.settings import Settings
broker = make_broker(Settings.from_env())
enqueue_envelopes(broker, "podfleet.launch", [{"v": 1, "body": "{}", "sig": "x"}], delay_ms=5000)
broker.client.close()
"""


def stored_etas(client: redis.Redis, namespace: str, queue: str) -> list[int]:
    key = redis_layout.messages_key(namespace, redis_layout.delay_queue(queue))
    return [int(dramatiq.Message.decode(data).options["eta"]) for data in client.hvals(key)]


def test_a_worker_ahead_of_redis_writes_a_delayed_eta_on_redis_clock(redis_url: str) -> None:
    # Given a process whose wall clock is 700 s ahead of Redis'
    env = {**os.environ, **skewed_clock_env(700), "PODFLEET_REDIS_URL": redis_url}
    env = {k: v for k, v in env.items() if not k.startswith("PROMETHEUS")}
    # When it hands a launch back to the broker with a 5 s delay
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # Then the eta is 5 s after Redis' now, not 705 s
    client = redis.Redis.from_url(redis_url)
    seconds, micros = client.time()
    redis_now_ms = seconds * 1000 + micros // 1000
    namespace = dramatiq_namespace()
    (eta,) = stored_etas(client, namespace, "podfleet.launch")
    assert 0 < eta - redis_now_ms <= 5_000 + 1_000


def dramatiq_namespace() -> str:
    from podfleet.broker import broker_namespace
    from podfleet.settings import Settings

    return broker_namespace(Settings.from_env({}))
