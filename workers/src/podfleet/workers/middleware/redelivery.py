"""Prompt redelivery of the messages of a worker that died without acking them.

dramatiq's RedisBroker moves a dead worker's unacked messages back to their queue during
"maintenance", which a broker call triggers by chance (0.1 % of calls), once the worker's
heartbeat is older than the broker's heartbeat timeout. Left to chance, a SIGKILLed launcher's
batch could wait minutes. This middleware runs that maintenance on a timer in every worker
process, so a dead worker's messages come back within about one heartbeat timeout, and the
launcher's deterministic pod names make the second delivery create nothing twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from podfleet.broker import redis_layout, requeue_dead_workers

logger = logging.getLogger("podfleet.workers.redelivery")


class DeadWorkerRedelivery(dramatiq.Middleware):
    """Every ``interval_s`` seconds, requeue the unacked messages of dead workers."""

    def __init__(self, interval_s: float | None = None) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if not isinstance(broker, RedisBroker):
            return
        interval = self.interval_s or max(0.5, broker.heartbeat_timeout / 1000 / 3)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(broker, interval),
                                        name="podfleet-redelivery", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()

    def _run(self, broker: RedisBroker, interval: float) -> None:
        while not self._stop.wait(interval):
            queues = [q for q in broker.get_declared_queues()
                      if not redis_layout.is_delay_queue(q)]
            try:
                requeue_dead_workers(broker, queues)
            except Exception as exc:  # Redis away: the next tick tries again
                logger.warning("dead-worker redelivery failed: %s", exc)
