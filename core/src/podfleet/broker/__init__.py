"""The dramatiq broker every podfleet process shares, and a pipelined batch enqueue.

Executors enqueue launch messages and workers consume them through the same
:class:`dramatiq.brokers.redis.RedisBroker` configuration, built by :func:`make_broker`.
dramatiq has no batch enqueue (``group().run()`` loops over single enqueues, ≈ 5,400/s), so
:func:`enqueue_envelopes` writes many messages in one pipelined round trip by calling
dramatiq's own ``dispatch.lua`` with its ``enqueue`` command: Redis then holds exactly what
``RedisBroker.enqueue`` would have written (the message hash entry, the queue list entry and the
sender's heartbeat), so dramatiq workers consume the messages normally. What that layout is,
and how the script is called, lives in :mod:`podfleet.broker.redis_layout` only.

The executor never imports the actor modules; it names the launch actor by
:data:`LAUNCH_ACTOR_NAME` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Middleware,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from podfleet.broker import redis_layout
from podfleet.redis_client import connect as connect_redis
from podfleet.settings import Settings

LAUNCH_ACTOR_NAME = "podfleet_launch"
WATCH_ACTOR_NAME = "podfleet_watch"
WATCH_QUEUE = "podfleet.watch"

# Idle consumers poll Redis with a backoff that grows up to the worker timeout; dramatiq's 1 s
# default puts ~160 ms on a launch at low load. A worker's ready queues wait on wake tokens
# instead and keep a shorter backoff (podfleet.workers.steady_consumer); this bounds the
# delay queues' polls, whose due messages nobody announces.
WORKER_TIMEOUT_MS = 100
# A dead worker's unacked messages are requeued once its heartbeat is this old. Live workers
# heartbeat on every poll (≤ WORKER_TIMEOUT_MS apart), so seconds are plenty of margin.
# (settings.broker.heartbeat_timeout_seconds, PODFLEET_BROKER_HEARTBEAT_TIMEOUT_SECONDS)
# Unexpected actor errors (Redis briefly away while publishing events, say) are retried a few
# times quickly; launch outcomes the actor handles itself never reach this policy.
MAX_RETRIES = 10
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 60_000
# A message that still fails after this long is stopped (TimeLimit); launch messages bound
# their own time well below it by handing long retries to a delayed message.
TIME_LIMIT_MS = 10 * 60 * 1000


def broker_namespace(settings: Settings) -> str:
    """The key prefix of dramatiq's queues: under podfleet's own prefix, so installations
    sharing one Redis do not consume each other's messages."""
    return f"{settings.redis.prefix}:dramatiq"


def make_broker(settings: Settings, *, middleware: Sequence[Middleware] = (),
                heartbeat_timeout_s: float | None = None,
                broker_class: type[RedisBroker] | None = None) -> RedisBroker:
    """A RedisBroker on ``settings.redis.url`` with podfleet's middleware.

    Kept from dramatiq's defaults: AgeLimit, TimeLimit, ShutdownNotifications, Callbacks,
    Pipelines, Retries (with a short, bounded policy instead of 20 retries over 7 days), plus
    CurrentMessage so an actor can re-enqueue or inspect its own message. ``middleware`` is
    appended (workers add theirs here); workers pass their own ``broker_class``. The default
    is :class:`~podfleet.broker.redis_clock_broker.RedisClockBroker`: heartbeats and
    maintenance on Redis' clock.
    """
    if broker_class is None:
        from podfleet.broker.redis_clock_broker import RedisClockBroker

        broker_class = RedisClockBroker
    timeout_s = heartbeat_timeout_s if heartbeat_timeout_s is not None \
        else settings.broker.heartbeat_timeout_seconds
    stack: list[Middleware] = [
        AgeLimit(),
        TimeLimit(time_limit=TIME_LIMIT_MS),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=MAX_RETRIES, min_backoff=MIN_BACKOFF_MS,
                max_backoff=MAX_BACKOFF_MS),
        CurrentMessage(),
        *middleware,
    ]
    return broker_class(
        # A plain Redis or a primary found through Sentinel (podfleet.redis_client).
        client=connect_redis(
            settings.redis.url,
            # Redis commands fail fast instead of hanging a worker thread on a dead connection.
            socket_timeout=10, socket_connect_timeout=5, health_check_interval=30),
        namespace=broker_namespace(settings),
        middleware=stack,
        heartbeat_timeout=int(timeout_s * 1000),
    )


def worker_environment(threads: int, launch_queues: int = 1) -> dict[str, str]:
    """dramatiq tuning read from the environment when a worker process imports dramatiq.

    Prefetch stays small: a launch message carries a whole batch and takes a while, so a
    worker hoarding hundreds of them would starve its peers and leave more to redeliver after
    a crash. A worker consuming several launch queues shares its threads out instead: each
    queue's consumer holds at most ``threads // launch_queues`` messages (dramatiq's prefetch
    is per queue), so a flooded queue occupies at most its share of the threads and another
    queue's launch always finds one free rather than waiting behind the flood.
    """
    prefetch = max(4, 2 * threads) if launch_queues <= 1 else max(1, threads // launch_queues)
    return {
        "dramatiq_worker_timeout": str(WORKER_TIMEOUT_MS),
        "dramatiq_queue_prefetch": str(prefetch),
    }


def enqueue_envelopes(broker: RedisBroker, queue_name: str, envelopes: list[dict[str, Any]],
                      *, delay_ms: int | None = None) -> list[str]:
    """Enqueue one launch message per envelope (actor :data:`LAUNCH_ACTOR_NAME`,
    ``args=(envelope,)``) in one Redis round trip; return the dramatiq message ids.

    With ``delay_ms`` the messages go to the queue's delay queue with an ``eta``, exactly as
    ``actor.send_with_options(delay=...)`` does. Raises a redis error when Redis cannot be
    reached; messages already written stay (a launch is idempotent, so resending is safe).
    """
    if not envelopes:
        return []
    broker.declare_queue(queue_name)
    messages: list[dramatiq.Message[Any]] = []
    calls: list[list[Any]] = []
    now_ms = redis_layout.broker_now_ms(broker) if delay_ms is not None else None
    for envelope in envelopes:
        message = redis_layout.stored_message(dramatiq.Message(
            queue_name=queue_name, actor_name=LAUNCH_ACTOR_NAME, args=(envelope,), kwargs={},
            options={}), delay_ms, now_ms=now_ms)
        broker.emit_before("enqueue", message, delay_ms)
        messages.append(message)
        calls.append(redis_layout.enqueue_args(broker, message))
    redis_layout.run_dispatch(broker, calls, wake=queue_name if delay_ms is None else None)
    for message in messages:
        broker.emit_after("enqueue", message, delay_ms)
    return [m.message_id for m in messages]


def requeue_dead_workers(broker: RedisBroker, queue_names: Sequence[str]) -> None:
    """Run dramatiq's queue maintenance now for ``queue_names`` (and their delay queues).

    dramatiq moves a dead worker's unacked messages back to their queue only during
    "maintenance", which a dispatch call triggers at random (0.1 % of calls). Workers call this
    on a timer instead, so a SIGKILLed worker's messages come back within about one heartbeat
    timeout rather than whenever chance allows.
    """
    calls = []
    for name in queue_names:
        for queue in (name, redis_layout.delay_queue(name)):
            calls.append(redis_layout.dispatch_args(broker, "qsize", queue, maintenance=True))
    if calls:
        redis_layout.run_dispatch(broker, calls)


def queue_sizes(broker: RedisBroker, queue_name: str) -> dict[str, int]:
    """Messages waiting, waiting delayed, and dead-lettered on ``queue_name``."""
    ns = broker.namespace
    pipe = broker.client.pipeline(transaction=False)
    pipe.llen(redis_layout.queue_key(ns, queue_name))
    pipe.hlen(redis_layout.messages_key(ns, redis_layout.delay_queue(queue_name)))
    pipe.zcard(redis_layout.dead_letters_key(ns, queue_name))
    ready, delayed, dead = pipe.execute()
    return {"ready": int(ready), "delayed": int(delayed), "dead": int(dead)}


def dead_letters(broker: RedisBroker, queue_name: str) -> list[dramatiq.Message[Any]]:
    """The messages dead-lettered on ``queue_name`` (for tests and operators)."""
    raw = broker.client.hvals(redis_layout.dead_letter_messages_key(broker.namespace, queue_name))
    return [dramatiq.Message.decode(data if isinstance(data, bytes) else str(data).encode())
            for data in raw]
