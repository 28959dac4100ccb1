"""Broker queue depth and dead letters, read from Redis when Prometheus scrapes.

A queue's depth is not something any one process observes — enqueuers and workers live on
different machines — so it is read from dramatiq's Redis keys at scrape time instead of being
recorded. dramatiq 2.2's RedisBroker keeps, per queue ``Q`` under its namespace ``NS``
(default ``dramatiq``; :mod:`podfleet.broker.redis_layout` describes the whole layout):

- ``NS:Q`` — list of message ids ready to be fetched → ``podfleet_broker_queue_depth``
- ``NS:Q.msgs`` — hash id -> message of every message not yet acked (ready + fetched);
  its size minus the list's is the messages a worker fetched and has not acked yet
  → ``podfleet_broker_in_flight_messages``
- ``NS:Q.DQ.msgs`` — hash of delayed messages (retries waiting for their eta, whether still
  in ``NS:Q.DQ`` or held by a worker) → ``podfleet_broker_delayed_messages``
- ``NS:Q.XQ`` — sorted set of dead-lettered ids → ``podfleet_broker_dead_letters``

Every value carries ``queue="Q"``. All reads of one scrape go in one pipelined round trip.
If Redis cannot be read the scrape still succeeds with ``podfleet_broker_up 0`` (and no queue
series), so an outage shows up as an alert instead of as a failed scrape target.
Every worker host exposes the same values: aggregate them with ``max``, never ``sum``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from podfleet.broker import redis_layout
from podfleet.monitoring import metrics
from podfleet.redis_client import connect as connect_redis

log = logging.getLogger(__name__)
DRAMATIQ_NAMESPACE = "dramatiq"


class BrokerCollector(Collector):
    """Collect dramatiq queue sizes for ``queues`` from Redis at each scrape.

    ``discover=True`` also reports every queue that has a key in Redis (found with one SCAN
    over ``NS:*.msgs`` and ``NS:*.XQ`` per scrape); useful when queue names are not known in
    advance, cheap when the Redis holds only podfleet's keys.
    """

    def __init__(self, client: redis.Redis, queues: Iterable[str], *,
                 namespace: str = DRAMATIQ_NAMESPACE, discover: bool = False,
                 timeout_seconds: float = 2.0) -> None:
        self._client = client
        self._queues = tuple(dict.fromkeys(queues))
        self._namespace = namespace
        self._discover = discover
        self._timeout_seconds = timeout_seconds

    @classmethod
    def from_url(cls, url: str, queues: Iterable[str], **kwargs: Any) -> BrokerCollector:
        """A collector with its own small Redis connection pool (timeouts keep scrapes short)."""
        timeout = float(kwargs.get("timeout_seconds", 2.0))
        client = connect_redis(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                               max_connections=4)
        return cls(client, queues, **kwargs)

    @property
    def client(self) -> redis.Redis:
        """The collector's Redis client (short timeouts; shared by the admission collector)."""
        return self._client

    def describe(self) -> Iterable[Metric]:
        # Describing would need Redis at registration time; an empty describe skips that.
        return ()

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(metrics.BROKER_UP_NAME,
                               "1 if the last scrape could read the broker's Redis, else 0.")
        try:
            sizes = self._read()
        except redis.RedisError as exc:
            log.warning("broker metrics: cannot read Redis: %s", exc)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        depth = GaugeMetricFamily(
            metrics.BROKER_QUEUE_DEPTH_NAME,
            "Messages ready in a dramatiq queue, waiting for a worker.", labels=["queue"])
        in_flight = GaugeMetricFamily(
            metrics.BROKER_IN_FLIGHT_NAME,
            "Messages a worker fetched from a queue and has not acked yet.", labels=["queue"])
        delayed = GaugeMetricFamily(
            metrics.BROKER_DELAYED_NAME,
            "Delayed messages of a queue (retries waiting for their eta).", labels=["queue"])
        dead = GaugeMetricFamily(
            metrics.BROKER_DEAD_LETTERS_NAME,
            "Messages in a queue's dead-letter set.", labels=["queue"])
        for queue, (ready, unacked, delayed_count, dead_count) in sizes.items():
            depth.add_metric([queue], ready)
            in_flight.add_metric([queue], max(0, unacked - ready))
            delayed.add_metric([queue], delayed_count)
            dead.add_metric([queue], dead_count)
        return [up, depth, in_flight, delayed, dead]

    def queues(self) -> Sequence[str]:
        """The queues one scrape reports: the configured ones, plus discovered ones."""
        if not self._discover:
            return self._queues
        found = dict.fromkeys(self._queues)
        ns = self._namespace
        for pattern in (redis_layout.messages_key(ns, "*"),
                        redis_layout.dead_letters_key(ns, "*")):
            for raw in self._client.scan_iter(match=pattern, count=1000):
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                name = redis_layout.queue_of_key(ns, key)
                if name:
                    found.setdefault(name)
        return tuple(found)

    def _read(self) -> dict[str, tuple[int, int, int, int]]:
        queues = self.queues()
        pipe = self._client.pipeline(transaction=False)
        for queue in queues:
            ns = self._namespace
            pipe.llen(redis_layout.queue_key(ns, queue))
            pipe.hlen(redis_layout.messages_key(ns, queue))
            pipe.hlen(redis_layout.messages_key(ns, redis_layout.delay_queue(queue)))
            pipe.zcard(redis_layout.dead_letters_key(ns, queue))
        values = [int(v) for v in pipe.execute()]
        return {queue: (values[4 * i], values[4 * i + 1], values[4 * i + 2], values[4 * i + 3])
                for i, queue in enumerate(queues)}
