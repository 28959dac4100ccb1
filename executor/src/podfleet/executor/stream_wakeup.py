"""A thread that blocks on an executor's own event stream and calls ``wake`` as soon as an
entry arrives, so the executor's background thread applies pod events when they come instead
of at its next timed sync.

It only watches (``XREAD BLOCK``, outside the consumer group: it reads nothing for good and
acknowledges nothing); the sync that ``wake`` brings on reads and applies the entries as
always. After a wake it moves its position to the stream's newest entry and waits for that
sync (:meth:`StreamWakeup.synced`) before watching again, so a burst of entries brings on one
sync per batch, never a loop of syncs over entries already seen. The streams of adopted
executors are not watched: the timed sync reads them.

A Redis error is logged at most once a minute; the thread retries every
:data:`RETRY_SECONDS`, and the timed sync carries on meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

log = logging.getLogger("podfleet.executor")

#: Milliseconds one blocking read waits at most (so :meth:`StreamWakeup.stop` is prompt).
BLOCK_MS = 1000
#: Seconds to wait after a Redis error before watching again.
RETRY_SECONDS = 1.0
#: Seconds a wake waits at most for its sync before watching again (a sync that failed).
SYNC_WAIT_SECONDS = 1.0


class StreamWakeup:
    """Watches the stream ``key`` on ``redis_client``; calls ``wake`` (from its own thread)
    when an entry newer than the last one it saw arrives."""

    def __init__(self, redis_client: redis.Redis, key: str, wake: Callable[[], None]) -> None:
        self.redis = redis_client
        self.key = key
        self.wake = wake
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_error_log = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="podfleet-stream-wakeup",
                                        daemon=True)
        self._thread.start()

    def synced(self) -> None:
        """The executor's thread has read the stream since the last wake."""
        self._synced.set()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        self._synced.set()
        if self._thread is not None:
            self._thread.join(max(0.0, timeout))

    def _run(self) -> None:
        last_id: bytes | str = "$"
        while not self._stopping.is_set():
            try:
                if last_id == "$":
                    last_id = self._newest_id(last_id)
                got = self.redis.xread({self.key: last_id}, count=1, block=BLOCK_MS)
                if not got or self._stopping.is_set():
                    continue
                last_id = self._newest_id(last_id)
                self._synced.clear()
                self.wake()
                self._synced.wait(SYNC_WAIT_SECONDS)
            except redis.RedisError as exc:
                if self._stopping.is_set():
                    return  # the executor closed its Redis client meanwhile
                now = time.monotonic()
                if now >= self._next_error_log:
                    self._next_error_log = now + 60.0
                    log.warning("cannot watch the event stream %s (the timed sync goes "
                                "on): %s", self.key, exc)
                self._stopping.wait(RETRY_SECONDS)

    def _newest_id(self, current: bytes | str) -> bytes | str:
        """The id of the stream's newest entry (``$`` resolved once, so that an entry added
        between two reads is never skipped); ``current`` when the stream is empty."""
        newest = self.redis.xrevrange(self.key, count=1)
        if newest:
            found: bytes = newest[0][0]  # type: ignore[assignment]  # redis-py's loose stubs
            return found
        return "0-0" if current == "$" else current
