"""The launcher's side of admission: one permit per create, from ``permit.lua``.

A permit reserves the pod's name in its namespace's pending view in the same atomic call
that checks the budgets, so concurrent launchers on any number of hosts cannot overshoot
the pending cap. A create that certainly made no pod gives its reservation back
(:meth:`Admission.release`); a reservation nobody confirms (the launcher crashed between
permit and create) expires after :data:`RESERVATION_TTL_S`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from podfleet.contracts.clusters import ClusterSpec
from podfleet.contracts.queues import DEFAULT_QUEUE, route_for
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.monitoring.metrics import ADMISSION_WAITS, RATE_LIMIT_GRANTED, Budget
from podfleet.settings import Settings

_SCRIPT = resources.files("podfleet.workers.admission").joinpath("permit.lua").read_text()

#: How long a reservation counts as a pending pod before the watcher confirms it. A launcher
#: creates within a second of its permit (at most the Kubernetes timeout, 10 s by default,
#: when the API is slow) and the watcher sees the pod within about a second of that, so only
#: a launcher that died between permit and create leaves one to expire: its slot returns
#: after this long.
RESERVATION_TTL_S = 60.0
#: Permits are reserved at most this far ahead: a queue that gets work waits at most about
#: this long behind the reservations of the busy queues, and a change of shares (a queue
#: starts or stops asking) takes effect within it.
HORIZON_S = 0.5
#: A queue that has not asked for a permit this long takes no share of the rate.
DEMAND_WINDOW_S = 1.0


@dataclass(frozen=True, slots=True)
class Permit:
    """``granted`` creates allowed (0: refused by ``budget``, ask again in ``wait_s``).

    Permit ``i`` (0-based) must not be used before :meth:`due_at` ``(i)``: the permits
    conform one rate interval apart.
    """

    granted: int
    wait_s: float
    budget: Budget | None = None
    delays_s: tuple[float, ...] = ()
    #: time.monotonic() when the delays were measured from.
    issued_at: float = field(default_factory=time.monotonic)

    def due_at(self, index: int) -> float:
        """The time.monotonic() at which permit ``index`` conforms."""
        return self.issued_at + (self.delays_s[index] if index < len(self.delays_s) else 0.0)


class Admission:
    """The budgets of every create; one per launcher process, safe to share between threads.

    ``rate`` (the cluster's launch rate, PODFLEET_LAUNCH_RATE) is shared among the task
    queues that asked for a permit within :data:`DEMAND_WINDOW_S`, by their weights
    (PODFLEET_QUEUE_WEIGHTS), each within its own ceiling (PODFLEET_QUEUE_RATES).

    Every budget is one cluster's (``cluster``; None: the first configured, ``default``
    without a clusters file): its rate, pending cap and Redis keys
    (``RedisKeys.for_cluster``), so each cluster of a fleet admits on its own.
    """

    def __init__(self, settings: Settings, redis_client: Any, *,
                 reservation_ttl_s: float = RESERVATION_TTL_S,
                 cluster: ClusterSpec | None = None) -> None:
        launch = settings.launch
        spec = cluster or settings.clusters.configured[0]
        self.cluster = spec.name
        self.reservation_ttl_s = reservation_ttl_s
        self.settings = settings
        self.keys = RedisKeys(settings.redis.prefix).for_cluster(spec.name)
        self.rate = spec.launch_rate
        # PODFLEET_LAUNCH_BURST applies to the cluster it was made for (today's settings).
        self.burst = launch.burst if spec.launch_rate == launch.rate else spec.launch_burst
        self.max_pending = spec.max_pending_pods
        self.namespace_caps = launch.namespace_max_pending_pods
        self.queue_caps = launch.queue_max_running
        self._weights: list[str | float] = []
        for name, weight in launch.queue_weights.items():
            self._weights += [name, weight]
        self._script = redis_client.register_script(_SCRIPT)
        self._redis = redis_client
        self._granted: dict[str, Any] = {}

    @property
    def unlimited(self) -> bool:
        """No budget at all: permits need no Redis call."""
        ceiling = any(r > 0 for r in self.settings.launch.queue_rates.values())
        return self.rate <= 0 and self.max_pending <= 0 and not self.namespace_caps \
            and not ceiling and not self.queue_caps

    def pending_cap(self, namespace: str) -> int:
        """The cap on pods of ``namespace`` that exist but are not yet Running (0: none)."""
        return self.namespace_caps.get(namespace, self.max_pending)

    def reserve(self, queue: str | None, namespace: str, names: list[str],
                horizon_s: float = HORIZON_S) -> Permit:
        """Permits for up to ``len(names)`` creates of task queue ``queue`` in ``namespace``,
        the first ``granted`` names reserved as pending; doesn't sleep."""
        if not names:
            raise ValueError("names must not be empty")
        task_queue = queue or DEFAULT_QUEUE
        route = route_for(self.settings, queue)
        ceiling = route.rate if route.name != DEFAULT_QUEUE else 0.0
        keys = self.keys
        reply = self._script(
            keys=[keys.rate_limit("launch"), keys.admission_share(route.name),
                  keys.rate_limit(route.limiter_name), keys.admission_demand,
                  keys.admission_pending(namespace), keys.admission_namespaces,
                  keys.admission_waiting, keys.admission_scratch, keys.admission_at_cap],
            args=[route.name, namespace, _interval_us(self.rate), self.burst,
                  _interval_us(ceiling), route.burst, int(horizon_s * 1_000_000),
                  self.pending_cap(namespace), self.max_pending,
                  int(self.reservation_ttl_s * 1000), keys.admission_pending_prefix,
                  int(DEMAND_WINDOW_S * 1_000_000), 1, self.queue_caps.get(route.name, 0),
                  f"{keys.admission_prefix}active:", len(self._weights) // 2,
                  *self._weights, len(names), *names])
        granted, wait_us = int(reply[0]), int(reply[1])
        if granted == 0:
            raw = reply[2].decode() if isinstance(reply[2], bytes) else str(reply[2])
            budget = Budget(raw)
            ADMISSION_WAITS.labels(queue=task_queue, budget=budget).inc()
            return Permit(0, max(0.0, wait_us / 1_000_000), budget)
        counter = self._granted.get(route.name)
        if counter is None:
            counter = self._granted[route.name] = RATE_LIMIT_GRANTED.labels(queue=route.name)
        counter.inc(granted)
        delays = tuple(max(0.0, int(d) / 1_000_000) for d in reply[3:3 + granted])
        return Permit(granted, max(0.0, wait_us / 1_000_000), None, delays)

    def acquire(self, queue: str | None, namespace: str, names: list[str],
                max_wait_s: float) -> Permit:
        """:meth:`reserve`, asking again until granted or ``max_wait_s`` has passed (then
        the last refusal). Sleeps until the first granted permit conforms."""
        started = time.monotonic()
        while True:
            permit = self.reserve(queue, namespace, names)
            if permit.granted:
                first = permit.delays_s[0] if permit.delays_s else 0.0
                if first > 0:
                    time.sleep(first)
                return Permit(permit.granted, permit.wait_s, None,
                              tuple(max(0.0, d - first) for d in permit.delays_s),
                              issued_at=permit.issued_at + first)
            remaining = max_wait_s - (time.monotonic() - started)
            if remaining <= 0:
                return permit
            # Asking again keeps the queue's demand fresh, so its share is held for it.
            time.sleep(min(max(permit.wait_s, 0.01), remaining, DEMAND_WINDOW_S / 2))

    def release(self, queue: str | None, namespace: str, names: list[str]) -> None:
        """Give back the reservations of creates that certainly made no pod."""
        if not names:
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(self.keys.admission_pending(namespace), *names)
        pipe.zrem(self.keys.admission_active(route_for(self.settings, queue).name, namespace),
                  *names)
        pipe.execute()


def _interval_us(rate: float) -> int:
    return round(1_000_000 / rate) if rate > 0 else 0
