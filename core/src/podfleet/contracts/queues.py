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

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # settings validates queue names with this module's rule
    from podfleet.settings import Settings

__all__ = ["DEFAULT_QUEUE", "QueueRoute", "configured_routes", "queue_name_problem", "route_for"]

#: The task queue of tasks that name none (Airflow's ``operators.default_queue``).
DEFAULT_QUEUE = "default"

# dramatiq's own rule for queue names; anything else fails only when a worker declares it.
_QUEUE_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9._-]*")


def queue_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a queue name, or None. The one rule for every queue name podfleet
    takes (PODFLEET_LAUNCH_QUEUE, PODFLEET_QUEUE_RATES, a task's ``queue=``, ``worker
    --queues``): dramatiq's, less the suffixes it reserves for delay and dead-letter queues."""
    if not isinstance(name, str):
        return f"a queue name must be a string, not {type(name).__name__}"
    if not _QUEUE_NAME.fullmatch(name) or len(name) > 200:
        return ("a queue name starts with a letter or '_' and has only letters, digits, '.', "
                "'_' and '-' (at most 200 characters)")
    if name.endswith((".DQ", ".XQ")) or name in ("DQ", "XQ"):
        return "a queue name must not end in DQ or XQ (dramatiq's delay and dead-letter queues)"
    return None


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
