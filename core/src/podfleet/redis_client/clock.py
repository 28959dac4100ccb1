"""Redis' clock as the one clock of deadlines: every host reads the time the same way.

A host whose clock is off (a worker 700 s ahead, say) would otherwise fail every launch as
"expired", or let a past deadline through. :class:`RedisClock` asks Redis for ``TIME`` at most
every ``refresh_seconds``, keeps this host's offset from it, and answers ``now()`` as the local
clock corrected by that offset, so one call per message costs no round trip. When Redis cannot
be reached it keeps the last offset: a deadline check must not fail because Redis is briefly
gone. Before its first answer there is no offset to keep: a ``strict`` clock (the launcher's,
the broker's: each is about to use Redis anyway) then raises Redis' error, and asks again at
its next call, since guessing zero on a host 700 s ahead would fail every launch as "expired";
a lenient one (the executor's, whose submissions must not need Redis) answers the local clock.

When the offset is larger than ``warn_seconds`` it logs, once, ``clock skew: this host's clock
is N s ahead of Redis``, and it hands every measured offset to ``observe`` (the callers' gauge,
``podfleet_clock_skew_seconds``), so the skew is visible where it is detected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger("podfleet.clock")

# How often the offset is measured again; a host's clock drifts slowly, NTP steps are rare.
REFRESH_SECONDS = 5.0
# Beyond this a host's clock is called skewed: deadlines and heartbeats are minutes apart.
WARN_SECONDS = 30.0


def describe_skew(skew_seconds: float, reference: str) -> str:
    """``clock skew: this host's clock is N s ahead of|behind <reference>``."""
    direction = "ahead of" if skew_seconds > 0 else "behind"
    return f"clock skew: this host's clock is {abs(skew_seconds):.0f} s {direction} {reference}"


class RedisClock:
    """Epoch seconds on Redis' clock (``TIME``), from the local clock plus a cached offset."""

    def __init__(self, client: redis.Redis | Any, *, refresh_seconds: float = REFRESH_SECONDS,
                 warn_seconds: float = WARN_SECONDS,
                 observe: Callable[[float], None] | None = None, strict: bool = False) -> None:
        self._client = client
        self._strict = strict
        self._measured = False
        self._refresh_seconds = refresh_seconds
        self._warn_seconds = warn_seconds
        self._observe = observe
        self._next_refresh = 0.0
        self._warned = False
        self.skew_seconds = 0.0
        """How far this host's clock is ahead of Redis' (negative: behind), last measured."""

    def now(self) -> float:
        """The time on Redis' clock, in epoch seconds."""
        if (self._strict and not self._measured) or time.monotonic() >= self._next_refresh:
            self.refresh()
        return time.time() - self.skew_seconds

    def refresh(self) -> None:
        """Measure the offset now. A failed ``TIME`` keeps the last one; with none yet, a
        strict clock raises the error (and tries again at its next call)."""
        self._next_refresh = time.monotonic() + self._refresh_seconds
        try:
            before = time.time()
            seconds, micros = self._client.time()
            after = time.time()
        except (redis.RedisError, OSError) as exc:
            if self._measured:
                return
            if self._strict:
                if isinstance(exc, redis.RedisError):
                    raise
                raise redis.ConnectionError(f"cannot read Redis' clock: {exc}") from exc
            # Without an offset, soon again (a lenient clock guesses zero until then).
            self._next_refresh = time.monotonic() + min(self._refresh_seconds, 0.5)
            return
        self._measured = True
        # The midpoint of the round trip is when Redis most likely read its clock.
        self.skew_seconds = (before + after) / 2 - (seconds + micros / 1e6)
        if self._observe is not None:
            self._observe(self.skew_seconds)
        if abs(self.skew_seconds) > self._warn_seconds:
            if not self._warned:
                self._warned = True
                log.warning("%s; deadlines are judged on Redis' clock",
                            describe_skew(self.skew_seconds, "Redis"))
        elif self._warned:
            self._warned = False
            log.info("clock skew cleared: this host's clock is within %.0f s of Redis",
                     self._warn_seconds)
