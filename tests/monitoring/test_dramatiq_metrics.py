"""DramatiqMetrics records dramatiq's message counters into podfleet's registry."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Retries
from prometheus_client import REGISTRY

from podfleet.monitoring.dramatiq_metrics import DramatiqMetrics

QUEUE = "metrics.test"


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=redis_url, middleware=[Retries(max_retries=1, min_backoff=10,
                                                            max_backoff=20)])
    broker.add_middleware(DramatiqMetrics())
    yield broker
    broker.close()


def _sample(name: str, actor: str, queue: str = QUEUE) -> float:
    return REGISTRY.get_sample_value(name, {"queue_name": queue, "actor_name": actor}) or 0.0


def test_processed_failed_retried_and_dead_lettered_messages_are_counted(
        broker: RedisBroker) -> None:
    # Given an actor that succeeds for even numbers and always fails for odd ones
    def flaky(n: int) -> None:
        if n % 2:
            raise ValueError(n)

    actor = dramatiq.actor(flaky, broker=broker, queue_name=QUEUE, actor_name="flaky")
    before = {name: _sample(name, "flaky") for name in (
        "dramatiq_messages_total", "dramatiq_message_errors_total",
        "dramatiq_message_retries_total", "dramatiq_message_rejects_total")}
    waits_before = REGISTRY.get_sample_value(
        "podfleet_queue_wait_seconds_count", {"queue": QUEUE}) or 0.0

    # When a worker processes 2 good and 1 bad message (1 retry allowed)
    for n in (2, 4, 1):
        actor.send(n)
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        broker.join(QUEUE, timeout=20_000)
        worker.join()
    finally:
        worker.stop()

    # Then: 4 attempts processed, 2 errors, 1 retry, 1 dead letter, 4 queue waits timed
    def delta(name: str) -> float:
        return _sample(name, "flaky") - before[name]

    assert delta("dramatiq_messages_total") == 4
    assert delta("dramatiq_message_errors_total") == 2
    assert delta("dramatiq_message_retries_total") == 1
    assert delta("dramatiq_message_rejects_total") == 1
    waits = REGISTRY.get_sample_value("podfleet_queue_wait_seconds_count", {"queue": QUEUE})
    assert waits is not None and waits - waits_before == 4
    assert _sample("dramatiq_messages_inprogress", "flaky") == 0
