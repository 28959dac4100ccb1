"""The worker's broker and consumer, steady through Redis outages and write refusals.

dramatiq's consumer thread keeps two things in memory only: the delayed messages it fetched
(``eta`` not reached; a launch handed back to wait for quota or for its rate-limit permits)
and the entries it prefetched but has not handed out. Both are in this worker's unacked set in
Redis, which is given back to the queue only when the worker dies. When Redis refuses a write
(``OOM`` at ``maxmemory``, ``MISCONF``, ``READONLY``) or goes away, dramatiq's thread drops
them from memory (a connection error empties its delay queue; any other error loses the due
message it was moving and then, putting the rest back through the same refusing Redis, ends the
thread). Their launches then wait, unlaunched, while the worker lives: the tasks stay QUEUED
until the stuck-QUEUED timeout.

So in a worker nothing of that reaches dramatiq's thread. :class:`SteadyConsumer` answers a
fetch Redis cannot serve with "no message" after a pause (the thread goes on, keeping what it
holds), and turns a refused ack, nack or requeue into a lost connection, which dramatiq's thread
retries (acks) or tolerates (requeue at shutdown: the unacked set goes back when the worker is
gone). :class:`SteadyRedisBroker` makes the consumer thread's move of a due delayed message to
its queue wait for Redis rather than raise while the thread runs, and lets an idle fetch wait
for the queue's next enqueue (its wake token) rather than only poll.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import redis
from dramatiq.errors import ConnectionClosed
from dramatiq.worker import ConsumerThread

from podfleet.broker import redis_layout
from podfleet.redis_client.refusals import is_passing_outage, is_write_refusal
from podfleet.workers.quarantine import QuarantiningConsumer, QuarantiningRedisBroker

logger = logging.getLogger("podfleet.workers.steady_consumer")

#: Pauses between tries while Redis is away or refuses writes: doubled from the first to the
#: second.
RETRY_S = (0.2, 2.0)
#: Longest an idle fetch waits for a wake token before dramatiq's own poll backoff sleeps.
IDLE_WAKE_WAIT_S = 0.1
#: dramatiq's idle backoff on a ready queue at most (ms): the wake wait above is the long one.
READY_BACKOFF_MAX_MS = 10


class SteadyConsumer(QuarantiningConsumer):
    """A consumer whose Redis outages never unwind dramatiq's consumer thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._pause = RETRY_S[0]
        self._failing_since: float | None = None

    def __next__(self) -> Any:
        try:
            message = super().__next__()
        except (ConnectionClosed, redis.RedisError) as exc:
            if isinstance(exc, redis.RedisError) and not is_passing_outage(exc):
                raise
            self._idle_through(exc)
            return None
        if self._failing_since is not None:
            logger.info("consumer of %s: Redis serves fetches again after %.1fs",
                        self.queue_name, time.monotonic() - self._failing_since)
            self._failing_since = None
            self._pause = RETRY_S[0]
        return message

    def _idle_through(self, exc: BaseException) -> None:
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            logger.warning("consumer of %s: Redis cannot serve a fetch (%s); the messages this "
                           "worker holds stay held, fetching again shortly", self.queue_name,
                           exc)
        time.sleep(self._pause)
        self._pause = min(RETRY_S[1], self._pause * 2)

    def ack(self, message: Any) -> None:
        with _refusal_as_lost_connection():
            super().ack(message)  # type: ignore[no-untyped-call]

    def nack(self, message: Any) -> None:
        with _refusal_as_lost_connection():
            super().nack(message)  # type: ignore[no-untyped-call]

    def requeue(self, messages: Any) -> None:
        with _refusal_as_lost_connection():
            super().requeue(messages)  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _refusal_as_lost_connection() -> Iterator[None]:
    """Raise a write refusal as dramatiq's ConnectionClosed, which its thread handles."""
    try:
        yield
    except redis.RedisError as exc:
        if is_write_refusal(exc):
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        raise


class SteadyRedisBroker(QuarantiningRedisBroker):
    """The worker's broker: quarantining, on Redis' clock, with :class:`SteadyConsumer`, and a
    consumer thread's enqueue (a due delayed message moving to its queue) waits for Redis."""

    @property
    def consumer_class(self) -> type[SteadyConsumer]:
        return SteadyConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        """dramatiq's consumer, whose idle backoff on a ready queue stays short: there the
        idle wait is :meth:`do_fetch`'s (woken by an enqueue), and a message that arrives
        while the consumer sleeps out its backoff waits for that sleep to end."""
        if not redis_layout.is_delay_queue(queue_name):
            timeout = min(timeout, READY_BACKOFF_MAX_MS)
        return super().consume(queue_name, prefetch, timeout)

    def do_fetch(self, queue_name: str, prefetch: int) -> list[bytes]:
        """dramatiq's fetch; when it finds nothing on a ready queue, wait up to
        :data:`IDLE_WAKE_WAIT_S` for the queue's next wake token (an enqueue) and fetch once
        more, so an idle worker takes a new message at once rather than at its next poll."""
        fetched: list[bytes] = self._dispatch("fetch")(queue_name, prefetch)
        if not fetched and not redis_layout.is_delay_queue(queue_name) and self.client.blpop(
                [redis_layout.wake_key(self.namespace, queue_name)], timeout=IDLE_WAKE_WAIT_S):
            fetched = self._dispatch("fetch")(queue_name, prefetch)
        return fetched

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        thread = threading.current_thread()
        if not isinstance(thread, ConsumerThread):
            return super().enqueue(message, delay=delay)
        pause, since = RETRY_S[0], None
        while True:
            try:
                return super().enqueue(message, delay=delay)
            except redis.RedisError as exc:
                # A thread being stopped raises: the message stays in this worker's unacked
                # set, which goes back to the queue once the worker is gone.
                if not is_passing_outage(exc) or not thread.running:
                    raise
                if since is None:
                    since = time.monotonic()
                    logger.warning("moving a due delayed message to %s: Redis cannot take it "
                                   "(%s); waiting for it", message.queue_name, exc)
            time.sleep(pause)
            pause = min(RETRY_S[1], pause * 2)
