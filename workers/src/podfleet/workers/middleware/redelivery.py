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
from typing import Any

from dramatiq.brokers.redis import RedisBroker

from podfleet.broker import redis_layout, requeue_dead_workers
from podfleet.workers.middleware.timer import TimerMiddleware

logger = logging.getLogger("podfleet.workers.redelivery")


class DeadWorkerRedelivery(TimerMiddleware):
    """Every ``interval_s`` seconds (default: a third of the broker's heartbeat timeout, at
    least 0.5 s), requeue the unacked messages of dead workers."""

    thread_name = "podfleet-redelivery"

    def __init__(self, interval_s: float | None = None) -> None:
        super().__init__()
        self.interval_s = interval_s

    def interval(self, broker: RedisBroker) -> float:
        return self.interval_s or max(0.5, broker.heartbeat_timeout / 1000 / 3)

    def tick(self, broker: RedisBroker, worker: Any) -> None:
        queues = [q for q in broker.get_declared_queues() if not redis_layout.is_delay_queue(q)]
        try:
            requeue_dead_workers(broker, queues)
        except Exception as exc:  # Redis away: the next tick tries again
            logger.warning("dead-worker redelivery failed: %s", exc)
