"""podfleet's batch enqueue leaves Redis exactly as dramatiq's own RedisBroker.enqueue does.

The two write to the same private Redis server, in two databases, under the same namespace
and broker id; then every key is read back with its type and contents. What is random or a
clock reading on both sides (the message ids, the enqueue time, the eta, the heartbeat's time)
is checked to be of the right kind and time, then replaced by a placeholder, so the comparison
is of everything else, byte for byte.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import dramatiq
import orjson
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker

from podfleet.broker import LAUNCH_ACTOR_NAME, enqueue_envelopes, redis_layout

NAMESPACE = "podfleet:dramatiq"
QUEUE = "podfleet.launch"
ENVELOPE = {"v": 1, "body": '{"requests":[]}', "sig": "c2ln"}


@pytest.fixture
def brokers(redis_url: str) -> Iterator[tuple[RedisBroker, RedisBroker]]:
    """dramatiq's side (database 0) and podfleet's side (database 1), one broker id."""
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    theirs = RedisBroker(url=f"{base}/0", namespace=NAMESPACE, middleware=[])
    ours = RedisBroker(url=f"{base}/1", namespace=NAMESPACE, middleware=[])
    ours.broker_id = theirs.broker_id
    yield theirs, ours
    theirs.close()
    ours.close()


def snapshot(client: redis.Redis) -> dict[str, tuple[str, Any]]:
    """Every key with its type and contents."""
    state: dict[str, tuple[str, Any]] = {}
    for raw in client.keys("*"):
        key = raw.decode()
        kind = client.type(key).decode()
        if kind == "list":
            value: Any = client.lrange(key, 0, -1)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = client.smembers(key)
        else:
            value = client.get(key)
        state[key] = (kind, value)
    return state


def normalised(state: dict[str, tuple[str, Any]], since_ms: int, until_ms: int,
               delay_ms: int | None) -> dict[str, tuple[str, Any]]:
    """``state`` with ids and clock readings checked, then replaced by placeholders."""
    ids: dict[bytes, bytes] = {}
    for kind, value in state.values():
        if kind == "hash":
            for message_id in value:
                ids.setdefault(message_id, b"<redis-id-%d>" % len(ids))

    def swap(text: bytes) -> bytes:
        return ids.get(text, text)

    result: dict[str, tuple[str, Any]] = {}
    for key, (kind, value) in state.items():
        for real, placeholder in ids.items():
            key = key.replace(real.decode(), placeholder.decode())
        if kind == "list":
            value = [swap(v) for v in value]
        elif kind == "hash":
            value = {swap(k): normalised_message(v, since_ms, until_ms, delay_ms)
                     for k, v in value.items()}
        elif kind == "zset":
            assert all(since_ms <= score <= until_ms for _, score in value)
            value = [(swap(member), "<now>") for member, _ in value]
        result[key] = (kind, value)
    return result


def normalised_message(data: bytes, since_ms: int, until_ms: int,
                       delay_ms: int | None) -> dict[str, Any]:
    message = orjson.loads(data)
    assert len(message.pop("message_id")) == 36
    assert since_ms <= message.pop("message_timestamp") <= until_ms
    options = message["options"]
    assert len(options["redis_message_id"]) == 36
    options["redis_message_id"] = "<redis-id>"
    if "eta" in options:
        assert delay_ms is not None
        assert since_ms + delay_ms <= options["eta"] <= until_ms + delay_ms
        options["eta"] = "<eta>"
    # The encoded bytes keep dramatiq's key order: compare it too, not only the content.
    return {"order": list(message), "option_order": list(options), "content": message}


@pytest.mark.parametrize("delay_ms", [None, 60_000], ids=["ready", "delayed"])
def test_enqueue_envelopes_leaves_redis_as_dramatiqs_enqueue_does(
        brokers: tuple[RedisBroker, RedisBroker], delay_ms: int | None) -> None:
    theirs, ours = brokers
    since = int(time.time() * 1000)

    # Given the same launch message enqueued by dramatiq itself and by enqueue_envelopes
    theirs.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name=LAUNCH_ACTOR_NAME,
                                    args=(ENVELOPE,), kwargs={}, options={}), delay=delay_ms)
    enqueue_envelopes(ours, QUEUE, [ENVELOPE], delay_ms=delay_ms)
    until = int(time.time() * 1000)

    # When both Redis databases are read back (podfleet's wake tokens beside the layout apart)
    expected = snapshot(theirs.client)
    written = snapshot(ours.client)
    wake = written.pop(redis_layout.wake_key(NAMESPACE, QUEUE), None)

    # Then they hold the same keys, of the same types, with the same contents
    assert normalised(written, since, until, delay_ms) == \
        normalised(expected, since, until, delay_ms)
    # ...and the keys are the ones redis_layout names
    target = redis_layout.delay_queue(QUEUE) if delay_ms is not None else QUEUE
    assert {k for k in written if not k.endswith(redis_layout.HEARTBEATS)} == {
        redis_layout.queue_key(NAMESPACE, target), redis_layout.messages_key(NAMESPACE, target)}
    assert redis_layout.heartbeats_key(NAMESPACE) in written
    # ...and a ready message left one token for the queue's idle consumers, a delayed none
    assert wake == (("list", [b"1"]) if delay_ms is None else None)
