"""The launcher's side of the cluster-wide rate limit (the algorithm is in ``gcra.lua``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from podfleet.monitoring.metrics import (
    RATE_LIMIT_CONFIGURED,
    RATE_LIMIT_GRANTED,
    RATE_LIMIT_WAIT,
)

_SCRIPT = resources.files("podfleet.workers.rate_limits").joinpath("gcra.lua").read_text()


@dataclass(frozen=True, slots=True)
class Grant:
    """``granted`` permits; the last is usable once ``wait_s`` seconds have passed (0: now).

    ``delays_s[i]`` is how long from the moment the grant was returned permit ``i`` must
    wait: permits conform one interval apart, and a caller that used them all at once would
    exceed the rate over a one-second window by up to ``granted - 1``.
    """

    granted: int
    wait_s: float
    delays_s: tuple[float, ...] = ()
    #: time.monotonic() when the delays were measured from (the reservation's answer).
    issued_at: float = field(default_factory=time.monotonic)

    def delay(self, index: int) -> float:
        """Seconds permit ``index`` (0-based) must still wait."""
        return self.delays_s[index] if index < len(self.delays_s) else 0.0

    def due_at(self, index: int) -> float:
        """The time.monotonic() at which permit ``index`` conforms. A caller that only
        reaches it much later (paused) must not use it then: the permits of a pause, used
        all at once on waking, would burst far past the rate."""
        return self.issued_at + self.delay(index)


class ClusterRateLimiter:
    """``rate`` permits per second with a ``burst``, shared by everyone using ``key``.

    ``rate`` 0 means unlimited: no Redis call at all. Safe to share between threads.
    ``queue`` (the task queue whose bucket this is) labels its metrics.
    """

    def __init__(self, redis_client: Any, key: str, rate: float, burst: int, *,
                 queue: str = "default") -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be ≥ 0 and burst ≥ 1")
        self.key = key
        self.rate = rate
        self.burst = burst
        self._interval_us = round(1_000_000 / rate) if rate > 0 else 0
        self._script = redis_client.register_script(_SCRIPT) if rate > 0 else None
        RATE_LIMIT_CONFIGURED.labels(queue=queue).set(rate)
        self._wait = RATE_LIMIT_WAIT.labels(queue=queue)
        self._granted = RATE_LIMIT_GRANTED.labels(queue=queue)

    @property
    def unlimited(self) -> bool:
        return self._script is None

    def reserve(self, n: int, max_wait_s: float) -> Grant:
        """Reserve up to ``n`` permits that conform within ``max_wait_s``; don't sleep.

        Returns the number reserved (≥ 1 unless even one permit is further away than
        ``max_wait_s``, in which case nothing is reserved) and the wait before using them.
        """
        if n < 1:
            raise ValueError("n must be ≥ 1")
        if self._script is None:
            return Grant(n, 0.0)
        granted, wait_us = self._script(
            keys=[self.key],
            args=[self._interval_us, self.burst, n, max(0, int(max_wait_s * 1_000_000))])
        k, last_s = int(granted), int(wait_us) / 1_000_000
        interval_s = self._interval_us / 1_000_000
        delays = tuple(max(0.0, last_s - (k - 1 - i) * interval_s) for i in range(k))
        return Grant(k, max(0.0, last_s), delays)

    def acquire(self, n: int, max_wait_s: float) -> Grant:
        """Reserve up to ``n`` permits and sleep until the first may be used.

        Waits at most ``max_wait_s`` in all. Returns ``Grant(k, waited, delays)`` with
        ``k`` ≥ 1 permits, the first usable now and permit ``i`` after ``delays[i]`` more
        seconds (the caller spreads its requests so), or ``Grant(0, wait)`` (having slept
        ``max_wait_s``) when none came within the time, ``wait`` then being roughly how much
        longer one would take.
        """
        started = time.monotonic()
        while True:
            remaining = max_wait_s - (time.monotonic() - started)
            grant = self.reserve(n, max(0.0, remaining))
            if grant.granted:
                first = grant.delay(0)
                if first > 0:
                    time.sleep(first)
                waited = time.monotonic() - started
                self._wait.observe(waited)
                self._granted.inc(grant.granted)
                # Due times stay anchored to the reservation: a pause in the sleep above
                # shows up as stale permits, not as permits that seem to conform now.
                return Grant(grant.granted, waited,
                             tuple(max(0.0, d - first) for d in grant.delays_s),
                             issued_at=grant.issued_at + first)
            if remaining <= 0:
                return Grant(0, grant.wait_s)
            # Not even one permit within the remaining time: sleep it out once, then retry.
            time.sleep(min(grant.wait_s, remaining))
