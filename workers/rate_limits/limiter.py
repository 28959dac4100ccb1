"""The launcher's side of the cluster-wide rate limit (the algorithm is in ``gcra.lua``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
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
    """``granted`` permits, usable once ``wait_s`` seconds have passed (0: now)."""

    granted: int
    wait_s: float


class ClusterRateLimiter:
    """``rate`` permits per second with a ``burst``, shared by everyone using ``key``.

    ``rate`` 0 means unlimited: no Redis call at all. Safe to share between threads.
    """

    def __init__(self, redis_client: Any, key: str, rate: float, burst: int) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be ≥ 0 and burst ≥ 1")
        self.key = key
        self.rate = rate
        self.burst = burst
        self._interval_us = round(1_000_000 / rate) if rate > 0 else 0
        self._script = redis_client.register_script(_SCRIPT) if rate > 0 else None
        RATE_LIMIT_CONFIGURED.set(rate)

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
        return Grant(int(granted), max(0.0, int(wait_us) / 1_000_000))

    def acquire(self, n: int, max_wait_s: float) -> Grant:
        """Reserve up to ``n`` permits and sleep until they may be used.

        Waits at most ``max_wait_s`` in all. Returns ``Grant(k, waited)`` with ``k`` ≥ 1
        permits now usable, or ``Grant(0, wait)`` (having slept ``max_wait_s``) when none
        came within the time, ``wait`` then being roughly how much longer one would take.
        """
        started = time.monotonic()
        while True:
            remaining = max_wait_s - (time.monotonic() - started)
            grant = self.reserve(n, max(0.0, remaining))
            if grant.granted:
                if grant.wait_s > 0:
                    time.sleep(grant.wait_s)
                waited = time.monotonic() - started
                RATE_LIMIT_WAIT.observe(waited)
                RATE_LIMIT_GRANTED.inc(grant.granted)
                return Grant(grant.granted, waited)
            if remaining <= 0:
                return Grant(0, grant.wait_s)
            # Not even one permit within the remaining time: sleep it out once, then retry.
            time.sleep(min(grant.wait_s, remaining))
