"""What every actor module of a worker process shares: its settings and its broker.

``podfleet.workers.actors`` (the module dramatiq's CLI loads) calls :func:`worker_broker`
before importing any actor module, so every ``@dramatiq.actor`` declares itself on the same
configured broker, with podfleet's worker middleware already in place.
"""

from __future__ import annotations

import functools
import importlib
import logging

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from podfleet.broker import make_broker
from podfleet.settings import Settings
from podfleet.workers.middleware import DeadLetters, DeadWorkerRedelivery
from podfleet.workers.quarantine import QuarantiningRedisBroker

logger = logging.getLogger("podfleet.workers")


@functools.lru_cache(maxsize=1)
def worker_settings() -> Settings:
    """This process's settings, read once from the environment."""
    return Settings.from_env()


@functools.lru_cache(maxsize=1)
def worker_broker() -> RedisBroker:
    """The process's broker (also installed as dramatiq's global broker)."""
    middleware: list[dramatiq.Middleware] = [DeadLetters(), DeadWorkerRedelivery()]
    try:
        metrics_module = importlib.import_module("podfleet.monitoring.dramatiq_metrics")
    except ImportError as exc:  # monitoring is optional for the launch path
        logger.warning("dramatiq metrics unavailable: %s", exc)
    else:
        kube = worker_settings().kubernetes
        namespaces = tuple(dict.fromkeys(
            (kube.namespace, *(n for n in kube.watch_namespaces if n != "*"))))
        middleware.append(metrics_module.DramatiqMetrics(namespaces))
    broker = make_broker(worker_settings(), middleware=middleware,
                         broker_class=QuarantiningRedisBroker)
    dramatiq.set_broker(broker)
    return broker
