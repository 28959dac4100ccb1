"""Counters of the API server's traffic, read by the admin endpoint and by tests."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

#: Accepted pod creates whose times are kept (the most recent), for ``GET /_sim/creates``.
CREATE_TIMES_KEPT = 200_000


@dataclass
class ApiStats:
    """Requests by (verb, resource, code), pod creates by outcome, watch connections."""

    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    creates_attempted: int = 0
    creates_accepted: int = 0
    creates_rejected: Counter[str] = field(default_factory=Counter)
    watches_open: int = 0
    watches_total: int = 0
    #: Wall-clock time (``time.time()``, sub-second) of each accepted pod create, oldest first.
    #: ``creationTimestamp`` has whole seconds only, too coarse to check a rate in any 1 s window.
    create_times: deque[float] = field(default_factory=lambda: deque(maxlen=CREATE_TIMES_KEPT))

    def record_create(self, code: int, reason: str) -> None:
        """Count one pod create: accepted on 2xx, else rejected under the Status reason."""
        self.creates_attempted += 1
        if code < 300:
            self.creates_accepted += 1
            self.create_times.append(time.time())
        else:
            self.creates_rejected[reason or str(code)] += 1
