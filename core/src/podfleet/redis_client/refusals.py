"""Redis refusing a write while it is up: the errors that say "not now", not "never".

At ``maxmemory`` under ``noeviction`` Redis answers ``OOM``; with a failed background save,
``MISCONF``; a demoted primary (or a replica) answers ``READONLY``. Each passes once Redis takes
writes again, as a lost connection passes once it is back, so callers that wait out an outage
wait these out too. redis-py names two of them; ``MISCONF`` comes as a plain ResponseError.
"""

from __future__ import annotations

import redis


def is_write_refusal(error: BaseException) -> bool:
    """True for ``OOM``, ``READONLY`` and ``MISCONF`` answers."""
    if isinstance(error, (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError)):
        return True
    return isinstance(error, redis.exceptions.ResponseError) and str(error).startswith(
        "MISCONF")


def is_passing_outage(error: BaseException) -> bool:
    """True for a lost connection (a timeout included) or a write refusal: errors that a
    retry after a pause can get past."""
    return isinstance(error, redis.exceptions.ConnectionError) or is_write_refusal(error)
