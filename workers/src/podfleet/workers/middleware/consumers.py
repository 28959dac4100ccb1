"""Announcing which launch queues this worker process consumes, so a queue nobody consumes
is seen (:mod:`podfleet.broker.consumers`).

dramatiq starts a consumer per queue the worker was told to take (``--queues``) after boot;
this middleware's thread reads them from the running worker every
:data:`~podfleet.broker.consumers.ANNOUNCE_SECONDS` and announces the launch queues among
them, and withdraws them at a clean shutdown (a killed worker just stops being live).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from podfleet.broker.consumers import ANNOUNCE_SECONDS, announce, consumer_name, withdraw
from podfleet.contracts.redis_keys import RedisKeys

logger = logging.getLogger("podfleet.workers.consumers")


class ConsumerAnnouncement(dramatiq.Middleware):
    """Announces, on a timer, the launch queues (of ``launch_queues``) this worker consumes."""

    def __init__(self, keys: RedisKeys, launch_queues: Sequence[str],
                 interval_s: float = ANNOUNCE_SECONDS) -> None:
        self.keys = keys
        self.launch_queues = tuple(launch_queues)
        self.interval_s = interval_s
        self.member = consumer_name()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._announced: tuple[str, ...] = ()

    def consumed(self, worker: Any) -> tuple[str, ...]:
        """The launch queues ``worker`` runs a consumer for."""
        running = set(getattr(worker, "consumers", {}))
        return tuple(q for q in self.launch_queues if q in running)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if not isinstance(broker, RedisBroker):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(broker, worker),
                                        name="podfleet-consumers", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
        if isinstance(broker, RedisBroker) and self._announced:
            try:
                withdraw(broker.client, self.keys, self._announced, self.member)
            except Exception as exc:  # Redis away: the entry expires by itself
                logger.warning("cannot withdraw this worker's queues: %s", exc)

    def _run(self, broker: RedisBroker, worker: Any) -> None:
        while True:
            queues = self.consumed(worker)
            try:
                announce(broker.client, self.keys, queues, self.member)
                self._announced = queues
            except Exception as exc:  # Redis away: the next tick tries again
                logger.warning("cannot announce this worker's queues: %s", exc)
            if self._stop.wait(self.interval_s):
                return
