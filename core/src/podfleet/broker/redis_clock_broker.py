"""dramatiq's RedisBroker with its queue bookkeeping timed by Redis' clock, not the host's.

Every ``dispatch.lua`` call carries the caller's "now": it stamps the worker's heartbeat, and
maintenance takes a worker whose heartbeat is older than the heartbeat timeout for dead and
hands its unacked messages to others. On each host's own clock, a worker 700 s ahead would
take every other worker for dead (their messages delivered twice), and one killed while 700 s
ahead would look alive for 700 s more (its messages stuck that long). This broker passes Redis'
time (:class:`~podfleet.redis_client.clock.RedisClock`: ``TIME`` every few seconds, a cached
offset between) instead, so heartbeats are written and judged on one clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dramatiq.brokers.redis import RedisBroker

from podfleet.broker import redis_layout
from podfleet.redis_client.clock import RedisClock


class RedisClockBroker(RedisBroker):
    """A RedisBroker whose ``dispatch.lua`` calls carry Redis' time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        # The launcher's own clock says "clock skew" for the process; this one stays quiet.
        self.clock = RedisClock(self.client, warn_seconds=float("inf"), strict=True)

    def now_ms(self) -> int:
        """Redis' time now, in epoch milliseconds."""
        return int(self.clock.now() * 1000)

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        """dramatiq's enqueue (its keys, as ``redis_layout`` writes them), with a delayed
        message's ``eta`` on Redis' clock (dramatiq counts from this host's, which a skewed
        host would push far off) and a ready one's wake token, in one round trip."""
        stored = redis_layout.stored_message(
            message, delay, now_ms=self.now_ms() if delay is not None else None)
        self.emit_before("enqueue", stored, delay)
        # A delayed message's queue is its delay queue, which takes no wake token.
        redis_layout.run_dispatch(self, [redis_layout.enqueue_args(self, stored)],
                                  wake=stored.queue_name)
        self.emit_after("enqueue", stored, delay)
        return stored

    def _dispatch(self, command: str) -> Callable[..., Any]:
        script = self.scripts["dispatch"]
        keys = [self.namespace]

        def do_dispatch(queue_name: str, *args: Any) -> Any:
            maintenance = bool(self._should_do_maintenance(command))
            return script(args=redis_layout.dispatch_args(
                self, command, queue_name, *args, maintenance=maintenance,
                now_ms=self.now_ms()), keys=keys)

        return do_dispatch
