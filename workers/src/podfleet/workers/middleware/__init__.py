"""dramatiq middleware of podfleet's worker processes."""

from __future__ import annotations

from podfleet.workers.middleware.dead_letter import DeadLetter, DeadLetters
from podfleet.workers.middleware.redelivery import DeadWorkerRedelivery

__all__ = ["DeadLetter", "DeadLetters", "DeadWorkerRedelivery"]
