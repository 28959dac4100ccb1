"""Noticing launch queues nobody consumes: launches waiting there would wait in silence.

Workers announce the launch queues they consume (:mod:`podfleet.broker.consumers`); the
executor looks at every configured launch queue on its housekeeping tick, exports
``podfleet_queue_consumers`` and ``podfleet_queue_waiting_launches`` per queue, and logs
``queue X: N launch message(s) waiting, no worker consumes it`` at most once a minute a queue.
``podfleet status`` prints the same line (:func:`unconsumed_queues`).
"""

from __future__ import annotations

import logging
import time

import redis

from podfleet.broker import broker_namespace
from podfleet.broker.consumers import ANNOUNCE_SECONDS, QueueConsumers, queue_consumers
from podfleet.contracts.queues import configured_routes
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.monitoring.metrics import QUEUE_CONSUMERS, QUEUE_WAITING_LAUNCHES
from podfleet.settings import Settings

log = logging.getLogger("podfleet.executor")

#: At most one log line per queue in this many seconds while nobody consumes it.
LOG_EVERY_SECONDS = 60.0
#: A queue is reported once nobody has consumed it for this long (a worker just starting
#: has not announced itself yet).
GRACE_SECONDS = ANNOUNCE_SECONDS


def launch_queue_consumers(client: redis.Redis, settings: Settings) -> list[QueueConsumers]:
    """Every configured launch queue with its waiting messages and live consumers."""
    queues = {route.broker_queue: route.name for route in configured_routes(settings)}
    return queue_consumers(client, RedisKeys(settings.redis.prefix),
                           broker_namespace(settings), queues)


class UnconsumedQueues:
    """Checks the launch queues and says which have launches waiting and no consumer."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._next_log: dict[str, float] = {}
        self._unconsumed_since: dict[str, float] = {}

    def check(self) -> list[QueueConsumers]:
        """Export the gauges; log each queue nobody has consumed for GRACE_SECONDS while
        launches wait in it (once a minute at most). Returns the queues logged about."""
        found = launch_queue_consumers(self._client, self._settings)
        now = time.monotonic()
        reported = []
        for queue in found:
            QUEUE_CONSUMERS.labels(queue=queue.queue).set(queue.consumers)
            QUEUE_WAITING_LAUNCHES.labels(queue=queue.queue).set(queue.waiting)
            if not queue.unconsumed:
                self._unconsumed_since.pop(queue.queue, None)
                self._next_log.pop(queue.queue, None)
                continue
            since = self._unconsumed_since.setdefault(queue.queue, now)
            if now - since >= GRACE_SECONDS and now >= self._next_log.get(queue.queue, 0.0):
                self._next_log[queue.queue] = now + LOG_EVERY_SECONDS
                log.warning("%s", queue.describe())
                reported.append(queue)
        return reported
