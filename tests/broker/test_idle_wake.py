"""An idle worker takes a new message when it is enqueued, not at its next poll: the enqueue
leaves a wake token beside dramatiq's layout and the worker's idle fetch waits on it. A real
private Redis, the worker's broker and the executor's batched enqueue."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from podfleet.broker import enqueue_envelopes, make_broker, redis_layout
from podfleet.settings import Settings
from podfleet.workers import steady_consumer
from podfleet.workers.steady_consumer import SteadyRedisBroker

QUEUE = "podfleet.launch"
#: Far longer than a wake takes: a fetch that ends sooner was woken, not timed out.
LONG_WAIT_S = 10.0


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings.from_env({"PODFLEET_REDIS_URL": redis_url,
                              "PODFLEET_REDIS_PREFIX": f"wake-{uuid.uuid4().hex[:8]}"})


@pytest.fixture
def worker_broker(settings: Settings, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[SteadyRedisBroker]:
    monkeypatch.setattr(steady_consumer, "IDLE_WAKE_WAIT_S", LONG_WAIT_S)
    broker = make_broker(settings, broker_class=SteadyRedisBroker)
    assert isinstance(broker, SteadyRedisBroker)
    broker.declare_queue(QUEUE)
    yield broker
    broker.close()


def _fetch_in_background(broker: SteadyRedisBroker, queue: str) -> tuple[threading.Thread,
                                                                         dict[str, object]]:
    outcome: dict[str, object] = {}

    def fetch() -> None:
        started = time.monotonic()
        outcome["messages"] = broker.do_fetch(queue, 4)
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    return thread, outcome


def test_an_idle_fetch_returns_the_message_enqueued_while_it_waits(
        settings: Settings, worker_broker: SteadyRedisBroker) -> None:
    # Given a worker idle on an empty queue
    thread, outcome = _fetch_in_background(worker_broker, QUEUE)
    time.sleep(0.3)
    assert thread.is_alive()
    # When the executor enqueues a launch message
    enqueue_envelopes(make_broker(settings), QUEUE, [{"v": 1}])
    thread.join(LONG_WAIT_S + 5)
    # Then the waiting fetch returns it, woken rather than at the end of its wait
    assert len(outcome["messages"]) == 1  # type: ignore[arg-type]
    assert outcome["seconds"] < LONG_WAIT_S  # type: ignore[operator]


def test_a_delay_queue_fetch_does_not_wait_for_tokens(
        worker_broker: SteadyRedisBroker) -> None:
    # A delay queue gets no tokens (its messages are moved when due, by its own consumer)
    thread, outcome = _fetch_in_background(worker_broker, redis_layout.delay_queue(QUEUE))
    thread.join(LONG_WAIT_S + 5)
    assert outcome["messages"] == []
    assert outcome["seconds"] < LONG_WAIT_S  # type: ignore[operator]


def test_a_burst_keeps_a_bounded_number_of_tokens(
        settings: Settings, worker_broker: SteadyRedisBroker) -> None:
    # When 200 messages are enqueued while no worker is idle
    enqueue_envelopes(make_broker(settings), QUEUE, [{"v": n} for n in range(200)])
    # Then their queue's wake list holds at most WAKE_TOKENS_MAX tokens
    client = redis.Redis.from_url(settings.redis.url)
    key = redis_layout.wake_key(worker_broker.namespace, QUEUE)
    assert client.llen(key) == redis_layout.WAKE_TOKENS_MAX
