"""A middleware that does one thing on a timer in each worker process, from boot to shutdown.

dramatiq's RedisBroker does its periodic work (heartbeats, maintenance) on the back of broker
calls; what podfleet must do on time even in an idle worker (redelivering a dead worker's
messages, announcing the queues this worker consumes) runs instead in a daemon thread of the
middleware's own, started after the worker boots and told to stop before it shuts down.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import dramatiq
from dramatiq.brokers.redis import RedisBroker


class TimerMiddleware(dramatiq.Middleware):
    """Calls :meth:`tick` every :meth:`interval` seconds in a thread named ``thread_name``,
    on a RedisBroker only; with ``tick_at_boot`` the first tick comes at once rather than one
    interval after boot. A tick handles its own errors: the next one tries again."""

    thread_name: ClassVar[str]
    tick_at_boot: ClassVar[bool] = False

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def interval(self, broker: RedisBroker) -> float:
        """Seconds between two ticks."""
        raise NotImplementedError

    def tick(self, broker: RedisBroker, worker: Any) -> None:
        """The periodic work."""
        raise NotImplementedError

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if not isinstance(broker, RedisBroker):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run,
                                        args=(broker, worker, self.interval(broker)),
                                        name=self.thread_name, daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()

    def _run(self, broker: RedisBroker, worker: Any, interval: float) -> None:
        if self.tick_at_boot:
            self.tick(broker, worker)
        while not self._stop.wait(interval):
            self.tick(broker, worker)
