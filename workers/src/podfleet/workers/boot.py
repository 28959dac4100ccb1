"""Booting a worker process: one call builds the broker and declares every actor it runs.

No worker module declares anything when it is imported; :func:`boot` does it all, on a broker
of its own, and returns what it declared, so a test (or a second boot in one process) sees
exactly one set of actors. dramatiq's CLI is given :func:`boot_process`
(``python -m dramatiq podfleet.workers.boot:boot_process``, dramatiq's ``module:callable``
form): it calls it in each worker process and then runs the global broker it installs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from podfleet.broker import WATCH_QUEUE, make_broker
from podfleet.contracts.queues import configured_routes
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.monitoring.dramatiq_metrics import DramatiqMetrics
from podfleet.settings import Settings
from podfleet.workers.cli import NO_WATCHER_VARIABLE
from podfleet.workers.launcher.actor import declare_launch_actor
from podfleet.workers.middleware import DeadLetters, DeadWorkerRedelivery
from podfleet.workers.middleware.consumers import ConsumerAnnouncement
from podfleet.workers.steady_consumer import SteadyRedisBroker
from podfleet.workers.watcher.actor import (
    WatcherSupervisor,
    declare_watch_actor,
    install_supervisor,
)


@dataclass(frozen=True, slots=True)
class WorkerApp:
    """What :func:`boot` declared: the broker, its actors and the queues they consume."""

    broker: RedisBroker
    launch_actor: dramatiq.Actor[[Any], None]
    #: Every task queue's dramatiq queue, the default route's first.
    launch_queues: tuple[str, ...]
    #: None when the watcher is disabled (``podfleet worker --no-watcher``).
    watch_actor: dramatiq.Actor[[str], None] | None
    supervisor: WatcherSupervisor | None

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue the actors consume: the launch queues, then the watcher's."""
        if self.watch_actor is None:
            return self.launch_queues
        return (*self.launch_queues, WATCH_QUEUE)


def build_broker(settings: Settings) -> RedisBroker:
    """The worker's broker: podfleet's broker with dead letters, prompt redelivery of dead
    workers' messages, dramatiq's metrics, and the consumer that quarantines garbage and keeps
    what it holds through Redis outages (:mod:`podfleet.workers.steady_consumer`)."""
    kube = settings.kubernetes
    # Every namespace the worker launches into or watches, "*" aside: their series start at 0.
    namespaces = tuple(dict.fromkeys(
        (kube.namespace, *(n for n in kube.watch_namespaces if n != "*"),
         *(n for spec in settings.clusters.configured for n in spec.namespaces if n != "*"))))
    middleware: list[dramatiq.Middleware] = [
        DeadLetters(), DeadWorkerRedelivery(),
        DramatiqMetrics(namespaces, settings.clusters.names)]
    return make_broker(settings, middleware=middleware, broker_class=SteadyRedisBroker)


def boot(settings: Settings, *, watcher: bool = True) -> WorkerApp:
    """Build the broker and declare the launch actor on every configured launch queue, and
    (unless ``watcher`` is False) the watcher actor and its supervisor middleware.

    Does not install the broker as dramatiq's global one (:func:`boot_process` does), so
    booting twice in one process makes two independent brokers.
    """
    broker = build_broker(settings)
    launch_actor = declare_launch_actor(broker, settings)
    launch_queues = tuple(route.broker_queue for route in configured_routes(settings))
    # Which launch queues this process consumes, so a queue nobody consumes is seen.
    broker.add_middleware(ConsumerAnnouncement(RedisKeys(settings.redis.prefix), launch_queues))
    watch_actor = supervisor = None
    if watcher:
        watch_actor = declare_watch_actor(broker, settings)
        supervisor = install_supervisor(broker, settings)
    return WorkerApp(
        broker=broker, launch_actor=launch_actor, launch_queues=launch_queues,
        watch_actor=watch_actor, supervisor=supervisor)


def boot_process() -> None:
    """Boot this worker process from its environment and install the broker as dramatiq's
    global one, which dramatiq's CLI then runs.

    ``podfleet worker --no-watcher`` reaches the worker processes as
    :data:`~podfleet.workers.cli.NO_WATCHER_VARIABLE`: dramatiq starts them, so an
    environment variable is the one way in.
    """
    app = boot(Settings.from_env(), watcher=os.environ.get(NO_WATCHER_VARIABLE, "") != "1")
    dramatiq.set_broker(app.broker)
