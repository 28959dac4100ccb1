"""Task queues: which dramatiq queue and which rate limit a task's ``queue=`` goes to.

Executors route by it (where a launch message is enqueued) and workers by it (which queues
they consume, which rate-limiter bucket a message draws on), so both must read the same
``PODFLEET_QUEUE_RATES``, as they read the same signing key.

A queue listed in ``PODFLEET_QUEUE_RATES`` has a dramatiq queue of its own
(``<PODFLEET_LAUNCH_QUEUE>.<queue>``) and a bucket of its own, so a flood on one queue neither
waits ahead of another's messages nor spends its permits. Every other task — no queue,
``default``, or a queue nobody listed — goes to the default queue (``PODFLEET_LAUNCH_QUEUE``,
today's name) and shares ``PODFLEET_LAUNCH_RATE``. Unlisted queues share rather than get a
bucket each because the limit exists to protect the API server: with a bucket per name, any
DAG author inventing a queue name would add a full rate of creations the operator never
configured, and no worker would consume its dramatiq queue by default. Shared, the pool never
creates faster than the sum of the configured rates.
"""

from __future__ import annotations

from dataclasses import dataclass

from podfleet.settings import DEFAULT_QUEUE, Settings

__all__ = ["DEFAULT_QUEUE", "QueueRoute", "configured_routes", "route_for"]


@dataclass(frozen=True, slots=True)
class QueueRoute:
    """Where the launches of one task queue go, and how fast they may be created."""

    name: str  # the task queue (``default`` for the default queue)
    broker_queue: str  # the dramatiq queue of its launch messages
    rate: float  # creations per second across the pool; 0 = unlimited
    burst: int

    @property
    def limiter_name(self) -> str:
        """The rate-limiter bucket's name (the default keeps today's ``launch``)."""
        return "launch" if self.name == DEFAULT_QUEUE else f"launch.{self.name}"


def default_route(settings: Settings) -> QueueRoute:
    launch = settings.launch
    return QueueRoute(DEFAULT_QUEUE, launch.queue, launch.rate, launch.burst)


def route_for(settings: Settings, queue: str | None) -> QueueRoute:
    """The route of a task whose ``queue=`` is ``queue`` (unlisted: the default route)."""
    rate = settings.launch.queue_rates.get(queue) if queue else None
    if rate is None or queue is None:
        return default_route(settings)
    return QueueRoute(queue, f"{settings.launch.queue}.{queue}", rate, max(1, int(rate)))


def configured_routes(settings: Settings) -> list[QueueRoute]:
    """The default route, then every queue of ``PODFLEET_QUEUE_RATES`` in its order."""
    return [default_route(settings),
            *(route_for(settings, name) for name in settings.launch.queue_rates)]
