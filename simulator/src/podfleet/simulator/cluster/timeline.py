"""One timer heap for every pod's next step, fired by a single event-loop callback.

100,000 pods each waiting for their next phase must not mean 100,000 asyncio tasks or
handles: the heap holds plain tuples, one ``loop.call_at`` is armed for the earliest of them,
and each wake-up fires at most ``batch`` due timers before yielding so that API requests keep
their latency while a burst of pods changes phase.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

TimerCallback = Callable[..., None]


class Timeline:
    """A heap of ``(due, seq, callback, args)`` fired on the running event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, batch: int = 256) -> None:
        self._loop = loop
        self._batch = max(1, batch)
        self._heap: list[tuple[float, int, TimerCallback, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._armed: asyncio.Handle | None = None
        self._armed_at = float("inf")
        self._closed = False
        #: Worst lateness of a timer (seconds past its due time when it fired) since the last
        #: ``reset_lateness``, and how many wake-ups were more than 50 ms late: a simulator
        #: that cannot keep up (or is starved of CPU) shows here first.
        self.max_lateness_s = 0.0
        self.late_wakeups = 0
        self.on_error: Callable[[BaseException], None] | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def now(self) -> float:
        """The loop's clock, which the timers are measured against."""
        return self._loop.time()

    def call_later(self, delay_s: float, callback: TimerCallback, *args: Any) -> None:
        """Run ``callback(*args)`` after ``delay_s`` seconds (0 → on the next wake-up)."""
        self.call_at(self._loop.time() + max(0.0, delay_s), callback, *args)

    def call_at(self, when: float, callback: TimerCallback, *args: Any) -> None:
        """Run ``callback(*args)`` at loop time ``when``. Safe to call from the loop only."""
        if self._closed:
            return
        heapq.heappush(self._heap, (when, next(self._seq), callback, args))
        if when < self._armed_at:
            self._arm(when)

    def reset_lateness(self) -> None:
        self.max_lateness_s = 0.0
        self.late_wakeups = 0

    def close(self) -> None:
        """Drop every pending timer and stop firing."""
        self._closed = True
        self._heap.clear()
        if self._armed is not None:
            self._armed.cancel()
            self._armed = None

    def _arm(self, when: float) -> None:
        if self._armed is not None:
            self._armed.cancel()
        self._armed_at = when
        self._armed = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._armed = None
        self._armed_at = float("inf")
        heap = self._heap
        now = self._loop.time()
        if heap:
            lateness = now - heap[0][0]
            if lateness > self.max_lateness_s:
                self.max_lateness_s = lateness
            if lateness > 0.05:
                self.late_wakeups += 1
        fired = 0
        while heap and heap[0][0] <= now and fired < self._batch:
            _, _, callback, args = heapq.heappop(heap)
            fired += 1
            try:
                callback(*args)
            except Exception as error:  # one pod's bug must not stop every other pod
                if self.on_error is not None:
                    self.on_error(error)
        if heap and not self._closed:
            if heap[0][0] <= now:
                # More are due: yield to I/O first, then continue.
                self._armed_at = now
                self._armed = self._loop.call_soon(self._fire)
            else:
                self._arm(heap[0][0])
