"""One container run's output, line by line with the time each line was written.

Kept per run so that ``kubectl logs`` can ask for ``--since``, ``--timestamps``, ``--tail``
and ``--previous`` as a container runtime's log files allow, and so that a follower
(``kubectl logs -f``) can wait for the next line. Bounded by bytes: the oldest lines go first.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque


class ContainerLog:
    """A bounded, timestamped line buffer that followers can wait on."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max(1, max_bytes)
        self._lines: deque[tuple[float, bytes]] = deque()
        self._bytes = 0
        self._partial = bytearray()
        self._partial_at = 0.0
        #: Total lines ever appended, so a follower can tell where it left off.
        self.appended = 0
        self.closed = False
        self._waiters: list[asyncio.Future[None]] = []

    def write(self, chunk: bytes, at: float | None = None) -> None:
        """Add output; complete lines become entries, a trailing partial line waits."""
        now = time.time() if at is None else at
        if not self._partial:
            self._partial_at = now
        self._partial += chunk
        while (end := self._partial.find(b"\n")) >= 0:
            self._append(bytes(self._partial[: end + 1]), self._partial_at)
            del self._partial[: end + 1]
            self._partial_at = now
        self._wake()

    def close(self) -> None:
        """The run ended: a partial last line becomes an entry; followers are released."""
        if self._partial:
            self._append(bytes(self._partial), self._partial_at)
            self._partial.clear()
        self.closed = True
        self._wake()

    def _append(self, line: bytes, at: float) -> None:
        self._lines.append((at, line))
        self._bytes += len(line)
        self.appended += 1
        while self._bytes > self._max_bytes and len(self._lines) > 1:
            _, dropped = self._lines.popleft()
            self._bytes -= len(dropped)

    def lines(self) -> list[tuple[float, bytes]]:
        """Every line kept, oldest first, as (unix time, bytes with its newline)."""
        return list(self._lines)

    def since(self, count: int) -> list[tuple[float, bytes]]:
        """Lines appended after the first ``count`` ever appended (those still kept)."""
        new = self.appended - count
        if new <= 0:
            return []
        kept = list(self._lines)
        return kept[-new:] if new < len(kept) else kept

    def data(self) -> bytes:
        """The kept output as one byte string (complete lines, then any partial line)."""
        return b"".join(line for _, line in self._lines) + bytes(self._partial)

    async def wait(self, timeout: float) -> None:
        """Return when more output arrives, the run ends, or ``timeout`` passes."""
        if self.closed:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            pass
        finally:
            if future in self._waiters:
                self._waiters.remove(future)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            if not future.done():
                future.set_result(None)
