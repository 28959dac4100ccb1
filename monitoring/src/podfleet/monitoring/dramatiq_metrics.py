"""dramatiq's own message metrics, recorded into podfleet's registry (one scrape for both).

dramatiq ships a Prometheus middleware, but it starts its own exposition server on port 9191
and re-points ``PROMETHEUS_MULTIPROC_DIR`` at its own directory when a worker process boots, so
its numbers and podfleet's would need two scrapes per host and two directories to keep clean.
This middleware records the same series (same names and labels; durations in seconds) into
``podfleet.monitoring.metrics``, so the worker's one per-host endpoint serves everything.
It also records ``podfleet_queue_wait_seconds``: how long a message sat in the broker before
an actor started on it, for every queue.

Add it to the broker's middleware (``broker.add_middleware(DramatiqMetrics())``) in processes
whose multiprocess directory is already prepared (see ``podfleet.monitoring.exposition``).
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq

from podfleet.broker import redis_layout
from podfleet.monitoring import metrics


class DramatiqMetrics(dramatiq.Middleware):
    """Count processed, failed, retried and dead-lettered messages; time actors and waits."""

    def __init__(self, namespaces: tuple[str, ...] = (),
                 clusters: tuple[str, ...] = ("default",)) -> None:
        self._namespaces = namespaces
        self._clusters = clusters
        # message_id -> monotonic start; a worker thread handles one message at a time, and
        # ids are unique, so a plain dict shared by threads is enough (GIL-atomic set/pop).
        self._started: dict[str, float] = {}
        self._delayed: set[str] = set()

    def after_process_boot(self, broker: Any) -> None:
        """Create every known series at 0 in this process, so rate() sees first increments."""
        for name in broker.get_declared_actors():
            actor = broker.get_actor(name)
            for metric in (metrics.DRAMATIQ_MESSAGES, metrics.DRAMATIQ_MESSAGE_ERRORS,
                           metrics.DRAMATIQ_MESSAGE_RETRIES, metrics.DRAMATIQ_MESSAGE_REJECTS):
                metric.labels(actor.queue_name, actor.actor_name)
        metrics.preinitialise_worker_metrics(self._namespaces, self._clusters)

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        if "retries" in message.options:
            metrics.DRAMATIQ_MESSAGE_RETRIES.labels(message.queue_name, message.actor_name).inc()

    def after_nack(self, broker: Any, message: Any) -> None:
        metrics.DRAMATIQ_MESSAGE_REJECTS.labels(message.queue_name, message.actor_name).inc()

    def before_delay_message(self, broker: Any, message: Any) -> None:
        self._delayed.add(message.message_id)
        metrics.DRAMATIQ_DELAYED_MESSAGES_INPROGRESS.labels(
            message.queue_name, message.actor_name).inc()

    def before_process_message(self, broker: Any, message: Any) -> None:
        queue, actor = message.queue_name, message.actor_name
        if message.message_id in self._delayed:
            self._delayed.discard(message.message_id)
            metrics.DRAMATIQ_DELAYED_MESSAGES_INPROGRESS.labels(queue, actor).dec()
        metrics.QUEUE_WAIT.labels(_canonical_queue(queue)).observe(_queue_wait_seconds(message))
        metrics.DRAMATIQ_MESSAGES_INPROGRESS.labels(queue, actor).inc()
        self._started[message.message_id] = time.monotonic()

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        queue, actor = message.queue_name, message.actor_name
        started = self._started.pop(message.message_id, None)
        if started is not None:
            metrics.DRAMATIQ_MESSAGE_DURATION.labels(queue, actor).observe(
                time.monotonic() - started)
            metrics.DRAMATIQ_MESSAGES_INPROGRESS.labels(queue, actor).dec()
        metrics.DRAMATIQ_MESSAGES.labels(queue, actor).inc()
        if exception is not None:
            metrics.DRAMATIQ_MESSAGE_ERRORS.labels(queue, actor).inc()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self.after_process_message(broker, message)


def _canonical_queue(queue_name: str) -> str:
    """``podfleet.launch.DQ`` -> ``podfleet.launch``: a delayed message belongs to its queue."""
    return redis_layout.canonical_queue(queue_name)


def _queue_wait_seconds(message: Any) -> float:
    """Seconds since the message became ready: its eta when delayed, else its enqueue time."""
    ready_ms = message.options.get("eta") or message.message_timestamp
    return max(0.0, time.time() - float(ready_ms) / 1000.0)
