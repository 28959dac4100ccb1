"""The launch actor (:data:`podfleet.broker.LAUNCH_ACTOR_NAME`) on every task queue's queue.

Importing this module declares nothing; :func:`declare_launch_actor` (called by
:func:`podfleet.workers.boot.boot`) declares the actor on ``settings.launch.queue`` and the
dramatiq queue of every task queue in ``PODFLEET_QUEUE_RATES`` too: dramatiq finds an actor
by name, whatever queue its message came from, so one actor serves them all, and the worker
consumes each declared queue (``podfleet worker --queues`` picks among them).

The :class:`Launcher` and its connections are made on the first message, inside the worker
process (after dramatiq forks it), and closed when the worker shuts down
(:class:`LauncherShutdown`): its HTTP session, event loop thread and connection pool.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import q_name
from dramatiq.middleware import CurrentMessage

from podfleet.broker import LAUNCH_ACTOR_NAME, enqueue_envelopes
from podfleet.contracts.queues import configured_routes
from podfleet.contracts.signing import MessageSigner
from podfleet.settings import Settings
from podfleet.workers.launcher.launch import Launcher

# A day: longer than any Redis outage worth waiting through.
REDIS_OUTAGE_LIMIT_MS = 24 * 3600 * 1000


class ProcessLauncher:
    """This worker process's one Launcher, made on first use and shared by its threads.

    Made on the first message, not at boot: booting only declares (so it needs no signing
    key or cluster), and the connections and event-loop thread belong to the worker process
    that serves messages.
    """

    def __init__(self, settings: Settings, broker: RedisBroker) -> None:
        self._settings = settings
        self._broker = broker
        self._lock = threading.Lock()
        self._launcher: Launcher | None = None

    def get(self) -> Launcher:
        """The Launcher, made on the first call."""
        if self._launcher is None:
            with self._lock:
                if self._launcher is None:
                    self._launcher = self._make()
        return self._launcher

    def close(self) -> None:
        """Close the Launcher if one was made; the next :meth:`get` makes a new one."""
        with self._lock:
            closing, self._launcher = self._launcher, None
        if closing is not None:
            closing.close()

    def _make(self) -> Launcher:
        settings = self._settings
        broker = self._broker

        def requeue(envelope: dict[str, Any], delay_ms: int) -> None:
            # Back to the queue the message came from (its delay queue's name stripped), so
            # a handed-back launch keeps its task queue's place.
            message = CurrentMessage.get_current_message()
            queue = (q_name(message.queue_name) if message is not None
                     else settings.launch.queue)
            enqueue_envelopes(broker, queue, [envelope], delay_ms=delay_ms or None)

        return Launcher(
            settings,
            redis_client=broker.client,
            signer=MessageSigner(settings.require_signing_key()),
            requeue=requeue)


class LauncherShutdown(dramatiq.Middleware):
    """Closes this process's Launcher once dramatiq's worker threads have all stopped."""

    def __init__(self, launcher: ProcessLauncher) -> None:
        self.launcher = launcher

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.launcher.close()


def declare_launch_actor(broker: RedisBroker, settings: Settings) -> dramatiq.Actor[[Any], None]:
    """Declare the launch actor and every task queue's dramatiq queue on ``broker``, and add
    the :class:`LauncherShutdown` that closes the process's Launcher."""
    launcher = ProcessLauncher(settings, broker)
    broker.add_middleware(LauncherShutdown(launcher))

    def launch(envelope: Any) -> None:
        """Launch the pods of one signed launch message (see ``podfleet.workers.launcher``)."""
        launcher.get().handle(envelope)

    actor: dramatiq.Actor[[Any], None] = dramatiq.actor(
        actor_name=LAUNCH_ACTOR_NAME,
        queue_name=settings.launch.queue,
        broker=broker,
        # Outcomes are handled inside, a Redis outage included (the thread waits for Redis:
        # a retry would be enqueued through the dead Redis and lost). Only a bug reaches
        # dramatiq's retries, and a retry is safe: launch records make creates happen once.
        max_retries=5,
        min_backoff=1000,
        max_backoff=30_000,
        # The launcher keeps its own budget (MESSAGE_BUDGET_S) for creates; dramatiq's limit
        # must not interrupt a thread that waits out a Redis outage, or the message would be
        # acked.
        time_limit=REDIS_OUTAGE_LIMIT_MS,
    )(launch)
    for route in configured_routes(settings)[1:]:
        broker.declare_queue(route.broker_queue)
    return actor
