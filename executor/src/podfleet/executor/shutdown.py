"""Ending an executor in bounded time, and saying what it leaves for adoption.

A scheduler ends its executor on SIGTERM and is killed if that takes too long, so ending
must not wait on services that are gone. While an executor ends, each Redis command and
Kubernetes request it still makes waits at most :data:`CALL_SECONDS` and is not retried
(redis-py otherwise retries a refused connection with backoff, for seconds per command).
What is still queued or running when it stops is not lost: its pods go on, and the next
executor adopts the tasks from the DB; :func:`left_for_adoption` says how many.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from podfleet.executor.slots import SlotCounts
from podfleet.kube.client import KubeClient

#: How long one Redis command or Kubernetes request may take while an executor ends.
CALL_SECONDS = 2.0


def fail_fast_redis(client: redis.Redis, seconds: float = CALL_SECONDS) -> None:
    """Make ``client``'s later commands wait at most ``seconds`` to connect and for an answer,
    without retrying; its open connections are dropped so that new ones take the limits."""
    pool = client.connection_pool
    pool.connection_kwargs.update(socket_timeout=seconds, socket_connect_timeout=seconds,
                                  retry=Retry(NoBackoff(), 0))
    pool.disconnect()
    pool.reset()


def fail_fast_kube(client: KubeClient, seconds: float = CALL_SECONDS) -> None:
    """Make ``client``'s later requests wait at most ``seconds`` to connect and to read."""
    client.timeout_seconds = min(client.timeout_seconds, seconds)


def left_for_adoption(executor_id: str, counts: SlotCounts | None) -> str:
    """The line an ending executor logs about the tasks it leaves to the next one."""
    if counts is None:
        return (f"executor {executor_id} stopped; its unfinished tasks (not counted: the "
                f"metadata DB did not answer) are left for adoption by the next executor")
    if not counts.active:
        return f"executor {executor_id} stopped with no task queued or running"
    queued = counts.waiting + counts.sent
    running = counts.launched + counts.running
    return (f"executor {executor_id} stopped; left {queued} task(s) QUEUED and {running} "
            f"RUNNING for adoption by the next executor (their pods go on)")
