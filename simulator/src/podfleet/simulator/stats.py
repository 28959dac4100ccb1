"""Counters of the API server's traffic, read by the admin endpoint and by tests."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ApiStats:
    """Requests by (verb, resource, code), pod creates by outcome, watch connections."""

    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    creates_attempted: int = 0
    creates_accepted: int = 0
    creates_rejected: Counter[str] = field(default_factory=Counter)
    watches_open: int = 0
    watches_total: int = 0

    def record_create(self, code: int, reason: str) -> None:
        """Count one pod create: accepted on 2xx, else rejected under the Status reason."""
        self.creates_attempted += 1
        if code < 300:
            self.creates_accepted += 1
        else:
            self.creates_rejected[reason or str(code)] += 1
