"""Announcing which launch queues this worker process consumes, so a queue nobody consumes
is seen (:mod:`podfleet.broker.consumers`).

dramatiq starts a consumer per queue the worker was told to take (``--queues``) after boot;
this middleware's thread reads them from the running worker every
:data:`~podfleet.broker.consumers.ANNOUNCE_SECONDS` and announces the launch queues among
them, and withdraws them at a clean shutdown (a killed worker just stops being live).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from podfleet.broker.consumers import ANNOUNCE_SECONDS, announce, consumer_name, withdraw
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.workers.middleware.timer import TimerMiddleware

logger = logging.getLogger("podfleet.workers.consumers")


class ConsumerAnnouncement(TimerMiddleware):
    """Announces, on a timer from boot on, the launch queues (of ``launch_queues``) this
    worker consumes."""

    thread_name = "podfleet-consumers"
    tick_at_boot = True

    def __init__(self, keys: RedisKeys, launch_queues: Sequence[str],
                 interval_s: float = ANNOUNCE_SECONDS) -> None:
        super().__init__()
        self.keys = keys
        self.launch_queues = tuple(launch_queues)
        self.interval_s = interval_s
        self.member = consumer_name()
        self._announced: tuple[str, ...] = ()

    def consumed(self, worker: Any) -> tuple[str, ...]:
        """The launch queues ``worker`` runs a consumer for."""
        running = set(getattr(worker, "consumers", {}))
        return tuple(q for q in self.launch_queues if q in running)

    def interval(self, broker: RedisBroker) -> float:
        return self.interval_s

    def tick(self, broker: RedisBroker, worker: Any) -> None:
        queues = self.consumed(worker)
        try:
            announce(broker.client, self.keys, queues, self.member)
            self._announced = queues
        except Exception as exc:  # Redis away: the next tick tries again
            logger.warning("cannot announce this worker's queues: %s", exc)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        super().before_worker_shutdown(broker, worker)
        if isinstance(broker, RedisBroker) and self._announced:
            try:
                withdraw(broker.client, self.keys, self._announced, self.member)
            except Exception as exc:  # Redis away: the entry expires by itself
                logger.warning("cannot withdraw this worker's queues: %s", exc)
