"""Who consumes each launch queue: worker processes say so, executors look.

A task whose queue no worker consumes (``podfleet worker --queues default`` while
``PODFLEET_QUEUE_RATES`` lists ``etl``) would wait in its dramatiq queue until the stuck-QUEUED
timeout, in silence. So each worker process announces, every :data:`ANNOUNCE_SECONDS`, the
launch queues it consumes: a member ``<host>:<pid>`` scored with Redis' time (``TIME``, so no
host's clock matters) in the sorted set :meth:`RedisKeys.consumers` of each queue. A consumer
is live while its score is younger than :data:`LIVE_SECONDS`; :func:`queue_consumers` counts
the live ones next to the messages waiting, for ``podfleet status``, the executor's log and
the ``podfleet_queue_consumers`` gauge.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from podfleet.broker import redis_layout
from podfleet.contracts.redis_keys import RedisKeys

#: How often a worker process announces its queues.
ANNOUNCE_SECONDS = 10.0
#: A consumer not heard from for this long is gone (three missed announcements).
LIVE_SECONDS = 3 * ANNOUNCE_SECONDS


def consumer_name() -> str:
    """This process's name among a queue's consumers: ``<host>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _redis_now(client: redis.Redis | Any) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1e6


def announce(client: redis.Redis | Any, keys: RedisKeys, queues: Iterable[str],
             member: str) -> None:
    """Say that ``member`` consumes each of ``queues`` now (one round trip besides TIME)."""
    now = _redis_now(client)
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        key = keys.consumers(queue)
        pipe.zadd(key, {member: now})
        pipe.zremrangebyscore(key, "-inf", now - LIVE_SECONDS)
        pipe.expire(key, int(LIVE_SECONDS * 10))
    pipe.execute()


def withdraw(client: redis.Redis | Any, keys: RedisKeys, queues: Iterable[str],
             member: str) -> None:
    """``member`` stops consuming ``queues`` (at a clean shutdown)."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zrem(keys.consumers(queue), member)
    pipe.execute()


@dataclass(frozen=True, slots=True)
class QueueConsumers:
    """One launch queue: launch messages waiting in it and live worker processes on it."""

    queue: str  # the dramatiq queue
    waiting: int
    consumers: int
    task_queue: str = ""  # the task queue it carries, as ``podfleet worker --queues`` names it

    @property
    def unconsumed(self) -> bool:
        """Launches wait and nobody will take them."""
        return self.waiting > 0 and self.consumers == 0

    def describe(self) -> str:
        """``queue X: N launch message(s) waiting, no worker consumes it``."""
        task_queue = self.task_queue or self.queue
        return (f"queue {self.queue}: {self.waiting} launch message(s) waiting, no worker "
                f"consumes it (add {task_queue} to a worker's --queues)")


def queue_consumers(client: redis.Redis | Any, keys: RedisKeys, namespace: str,
                    queues: Mapping[str, str]) -> list[QueueConsumers]:
    """For each dramatiq queue in ``queues`` (dramatiq queue -> task queue; broker namespace
    ``namespace``): messages ready in it and live consumers, in one round trip besides TIME."""
    names = list(queues)
    now = _redis_now(client)
    pipe = client.pipeline(transaction=False)
    for queue in names:
        pipe.llen(redis_layout.queue_key(namespace, queue))
        pipe.zcount(keys.consumers(queue), now - LIVE_SECONDS, "+inf")
    answers = pipe.execute()
    return [QueueConsumers(queue, int(answers[2 * i]), int(answers[2 * i + 1]), queues[queue])
            for i, queue in enumerate(names)]
