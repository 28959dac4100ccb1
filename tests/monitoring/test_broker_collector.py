"""podfleet_broker_* gauges are read from dramatiq's real Redis keys at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from prometheus_client import CollectorRegistry

from podfleet.monitoring.broker_collector import BrokerCollector

QUEUE = "podfleet.launch"


@pytest.fixture
def broker(redis_url: str) -> Iterator[RedisBroker]:
    broker = RedisBroker(url=redis_url)
    yield broker
    broker.close()


def _registry(collector: BrokerCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def _sample(registry: CollectorRegistry, name: str, queue: str = QUEUE) -> float | None:
    return registry.get_sample_value(name, {"queue": queue})


def _actor(broker: RedisBroker, queue: str = QUEUE) -> dramatiq.Actor[[int], None]:
    def launch(n: int) -> None:
        """Never runs: the test only enqueues."""

    return dramatiq.actor(launch, broker=broker, queue_name=queue)


def test_queue_depth_counts_ready_messages(broker: RedisBroker, redis_url: str) -> None:
    # Given five launch messages nobody has fetched yet
    actor = _actor(broker)
    for n in range(5):
        actor.send(n)

    # When Prometheus scrapes
    registry = _registry(BrokerCollector(redis.Redis.from_url(redis_url), [QUEUE]))

    # Then the depth is five, and nothing is in flight or dead
    assert _sample(registry, "podfleet_broker_queue_depth") == 5
    assert _sample(registry, "podfleet_broker_in_flight_messages") == 0
    assert _sample(registry, "podfleet_broker_dead_letters") == 0
    assert registry.get_sample_value("podfleet_broker_up") == 1


def test_fetched_and_dead_lettered_messages(broker: RedisBroker, redis_url: str) -> None:
    # Given three messages, of which a worker fetched two and dead-lettered one
    actor = _actor(broker)
    for n in range(3):
        actor.send(n)
    consumer = broker.consume(QUEUE, prefetch=2, timeout=1000)
    first = next(consumer)
    second = next(consumer)
    assert first is not None and second is not None
    consumer.nack(first)

    # When scraped
    registry = _registry(BrokerCollector(redis.Redis.from_url(redis_url), [QUEUE]))

    # Then one is ready, one in flight and one dead
    assert _sample(registry, "podfleet_broker_queue_depth") == 1
    assert _sample(registry, "podfleet_broker_in_flight_messages") == 1
    assert _sample(registry, "podfleet_broker_dead_letters") == 1
    consumer.close()


def test_delayed_messages_are_reported_apart(broker: RedisBroker, redis_url: str) -> None:
    # Given two messages delayed (as retries are) and none ready
    actor = _actor(broker)
    for n in range(2):
        actor.send_with_options(args=(n,), delay=60_000)

    # When scraped
    registry = _registry(BrokerCollector(redis.Redis.from_url(redis_url), [QUEUE]))

    # Then they count as delayed, not as queue depth
    assert _sample(registry, "podfleet_broker_delayed_messages") == 2
    assert _sample(registry, "podfleet_broker_queue_depth") == 0


def test_discovery_reports_queues_not_configured(broker: RedisBroker, redis_url: str) -> None:
    # Given a message on a queue the collector was not told about
    _actor(broker, "other.queue").send(1)

    # When a discovering collector is scraped
    registry = _registry(BrokerCollector(redis.Redis.from_url(redis_url), [QUEUE],
                                         discover=True))

    # Then both queues are reported
    assert _sample(registry, "podfleet_broker_queue_depth", "other.queue") == 1
    assert _sample(registry, "podfleet_broker_queue_depth", QUEUE) == 0


def test_unreachable_redis_reports_down_not_a_failed_scrape() -> None:
    # Given a collector pointed at a port where no Redis listens
    from podfleet.local.ports import free_port

    collector = BrokerCollector.from_url(f"redis://127.0.0.1:{free_port()}/0", [QUEUE],
                                         timeout_seconds=0.5)

    # When scraped
    registry = _registry(collector)

    # Then the scrape works and says the broker is down
    assert registry.get_sample_value("podfleet_broker_up") == 0
    assert _sample(registry, "podfleet_broker_queue_depth") is None
