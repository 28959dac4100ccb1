"""Task states and the one rule that decides whether an event may change a task's state."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """States of one task try as podfleet tracks it (the DB's ``state`` column holds the value)."""

    QUEUED = "queued"        # written by submit; a launch message is (or will be) in the broker
    LAUNCHED = "launched"    # the API server accepted the pod
    RUNNING = "running"      # the pod's containers run
    SUCCESS = "success"
    FAILED = "failed"
    REVOKED = "revoked"      # deleted on request (Executor.revoke)

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.REVOKED})

# Progress order: an event may only move a task forward. A replayed or late event (a RUNNING that
# arrives after SUCCESS, a second LAUNCHED) therefore changes nothing.
_RANK = {
    TaskState.QUEUED: 0,
    TaskState.LAUNCHED: 1,
    TaskState.RUNNING: 2,
    TaskState.SUCCESS: 3,
    TaskState.FAILED: 3,
    TaskState.REVOKED: 3,
}


def may_transition(current: TaskState, new: TaskState) -> bool:
    """True when a task in ``current`` should move to ``new``; terminal states are final."""
    if current.is_terminal:
        return False
    return _RANK[new] > _RANK[current]
