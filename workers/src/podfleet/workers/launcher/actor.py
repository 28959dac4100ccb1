"""The launch actor (:data:`podfleet.broker.LAUNCH_ACTOR_NAME`) on every task queue's queue.

Importing this module declares the actor on the worker's broker
(:func:`podfleet.workers.runtime.worker_broker`) on ``settings.launch.queue``, and declares
the dramatiq queue of every task queue in ``PODFLEET_QUEUE_RATES`` too: dramatiq finds an
actor by name, whatever queue its message came from, so one actor serves them all, and the
worker consumes each declared queue (``podfleet worker --queues`` picks among them).

The :class:`Launcher` and its connections are made on the first message, inside the worker
process (after dramatiq forks it), and closed when the worker shuts down
(:class:`LauncherShutdown`): its HTTP session, event loop thread and connection pool.
"""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.common import q_name
from dramatiq.middleware import CurrentMessage

from podfleet.broker import LAUNCH_ACTOR_NAME, enqueue_envelopes
from podfleet.contracts.queues import configured_routes
from podfleet.contracts.signing import MessageSigner
from podfleet.kube.client import KubeClient
from podfleet.monitoring.metrics import observe_kube_request
from podfleet.workers.launcher.launch import Launcher
from podfleet.workers.runtime import worker_broker, worker_settings

# A day: longer than any Redis outage worth waiting through.
REDIS_OUTAGE_LIMIT_MS = 24 * 3600 * 1000

_lock = threading.Lock()
_launcher: Launcher | None = None


class LauncherShutdown(dramatiq.Middleware):
    """Closes this process's Launcher once dramatiq's worker threads have all stopped."""

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        global _launcher
        with _lock:
            closing, _launcher = _launcher, None
        if closing is not None:
            closing.close()


def launcher() -> Launcher:
    """This process's Launcher, made on first use."""
    global _launcher
    if _launcher is None:
        with _lock:
            if _launcher is None:
                settings = worker_settings()
                broker = worker_broker()

                def requeue(envelope: dict[str, Any], delay_ms: int) -> None:
                    # Back to the queue the message came from (its delay queue's name
                    # stripped), so a handed-back launch keeps its task queue's place.
                    message = CurrentMessage.get_current_message()
                    queue = (q_name(message.queue_name) if message is not None
                             else settings.launch.queue)
                    enqueue_envelopes(broker, queue, [envelope], delay_ms=delay_ms or None)

                _launcher = Launcher(
                    settings,
                    kube=KubeClient.from_settings(settings.kubernetes,
                                                observe=observe_kube_request),
                    redis_client=broker.client,
                    signer=MessageSigner(settings.require_signing_key()),
                    requeue=requeue)
    return _launcher


def launch(envelope: Any) -> None:
    """Launch the pods of one signed launch message (see ``podfleet.workers.launcher``)."""
    launcher().handle(envelope)


worker_broker().add_middleware(LauncherShutdown())

launch_actor: dramatiq.Actor[[Any], None] = dramatiq.actor(
    actor_name=LAUNCH_ACTOR_NAME,
    queue_name=worker_settings().launch.queue,
    broker=worker_broker(),
    # Outcomes are handled inside, a Redis outage included (the thread waits for Redis:
    # a retry would be enqueued through the dead Redis and lost). Only a bug reaches
    # dramatiq's retries, and a retry is safe: launch records make creates happen once.
    max_retries=5,
    min_backoff=1000,
    max_backoff=30_000,
    # The launcher keeps its own budget (MESSAGE_BUDGET_S) for creates; dramatiq's limit must
    # not interrupt a thread that waits out a Redis outage, or the message would be acked.
    time_limit=REDIS_OUTAGE_LIMIT_MS,
)(launch)

for _route in configured_routes(worker_settings())[1:]:
    worker_broker().declare_queue(_route.broker_queue)
