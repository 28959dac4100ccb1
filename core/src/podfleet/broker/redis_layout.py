"""Everything podfleet knows about how dramatiq's RedisBroker lays messages out in Redis.

dramatiq (2.2) keeps its queues in Redis through one Lua script, ``dispatch.lua``, called as
``dispatch(keys=[NS], args=[command, now_ms, queue, worker_id, heartbeat_timeout_ms,
dead_message_ttl_ms, do_maintenance, max_unpack_size, *command_args])``. podfleet calls that
script itself (a pipelined batch enqueue, maintenance on a timer) and reads its keys (queue
sizes, dead letters, metrics, quarantine), so this module is the one place that knows the
layout; nothing else in podfleet spells a dramatiq key or a ``.DQ``/``.XQ`` suffix. If
dramatiq changes its layout, this module and ``tests/broker/test_redis_layout.py`` change.

Keys, per queue ``Q`` under the broker's namespace ``NS`` (podfleet's is ``<prefix>:dramatiq``):

=================================  ==========  ===============================================
key                                type        holds
=================================  ==========  ===============================================
``NS:Q``                           list        ids of messages ready to fetch, oldest first
``NS:Q.msgs``                      hash        id → encoded message, for every message not yet
                                               acked (ready or fetched)
``NS:Q.DQ``, ``NS:Q.DQ.msgs``      list, hash  the same for ``Q``'s delay queue (messages with
                                               an ``eta``; a worker moves them to ``Q`` when due)
``NS:Q.XQ``                        sorted set  ids of dead-lettered messages, scored by when
                                               (ms); a delay queue's go to its queue's ``.XQ``
``NS:Q.XQ.msgs``                   hash        id → encoded message, of the dead letters
``NS:__acks__.W.Q``                set         ids worker ``W`` fetched from ``Q`` and has not
                                               acked; a dead worker's go back to ``Q``
``NS:__heartbeats__``              sorted set  worker ids scored by their last dispatch call (ms)
=================================  ==========  ===============================================

Beside the layout, and podfleet's own: ``NS.wake:Q`` (a list, outside ``NS:``), a token per
message enqueued ready on ``Q`` (:data:`WAKE_TOKENS_MAX` kept at most). An idle consumer of
``Q`` waits on it (``BLPOP``) for the next enqueue instead of only sleeping out dramatiq's
poll backoff (up to the worker timeout, 100 ms), so a launch reaches an idle worker at once.
A token nobody took only costs one empty fetch later.

The id in those keys is the message's ``redis_message_id`` option (a fresh uuid4 per enqueue,
since a retried message keeps its ``message_id``), not its ``message_id``. The enqueue command
(``HSET NS:Q.msgs id data``, ``RPUSH NS:Q id``, plus the heartbeat every call makes) is the
whole of ``RedisBroker.enqueue``'s effect on Redis; a delayed message goes to ``Q.DQ`` with an
``eta`` option (epoch ms).
"""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name, q_name

DELAY_SUFFIX = ".DQ"
DEAD_LETTER_SUFFIX = ".XQ"
MESSAGES_SUFFIX = ".msgs"
ACKS = "__acks__"
HEARTBEATS = "__heartbeats__"
WAKE_SUFFIX = ".wake"
#: Tokens a queue's wake list keeps at most (more would only wake idle consumers for nothing).
WAKE_TOKENS_MAX = 64


# --- queue names ----------------------------------------------------------------------------

def delay_queue(queue_name: str) -> str:
    """The delay queue of ``queue_name`` (``Q.DQ``; a delay queue's is itself)."""
    return dq_name(queue_name)


def is_delay_queue(queue_name: str) -> bool:
    return queue_name.endswith(DELAY_SUFFIX)


def canonical_queue(queue_name: str) -> str:
    """The queue a delay or dead-letter queue belongs to (``Q.DQ`` → ``Q``); others as given."""
    return q_name(queue_name)


def is_internal_name(name: str) -> bool:
    """A name dramatiq's layout reserves (``__acks__…``, ``__heartbeats__``): not a queue."""
    return name.startswith("__")


# --- keys -----------------------------------------------------------------------------------

def queue_key(namespace: str, queue_name: str) -> str:
    """``NS:Q``: the list of ready message ids."""
    return f"{namespace}:{queue_name}"


def messages_key(namespace: str, queue_name: str) -> str:
    """``NS:Q.msgs``: the hash of every unacked message of ``queue_name``."""
    return f"{namespace}:{queue_name}{MESSAGES_SUFFIX}"


def dead_letters_key(namespace: str, queue_name: str) -> str:
    """``NS:Q.XQ``: the sorted set of dead-lettered ids (a delay queue's go to its queue's)."""
    return f"{namespace}:{canonical_queue(queue_name)}{DEAD_LETTER_SUFFIX}"


def dead_letter_messages_key(namespace: str, queue_name: str) -> str:
    """``NS:Q.XQ.msgs``: the hash of dead-lettered messages."""
    return dead_letters_key(namespace, queue_name) + MESSAGES_SUFFIX


def acks_key(namespace: str, worker_id: str, queue_name: str) -> str:
    """``NS:__acks__.W.Q``: ids worker ``worker_id`` fetched from ``queue_name``, unacked."""
    return f"{namespace}:{ACKS}.{worker_id}.{queue_name}"


def wake_key(namespace: str, queue_name: str) -> str:
    """``NS.wake:Q``: the tokens an idle consumer of ``Q`` waits on (outside ``NS:``, so no
    scan of the layout takes it for a queue)."""
    return f"{namespace}{WAKE_SUFFIX}:{queue_name}"


def heartbeats_key(namespace: str) -> str:
    """``NS:__heartbeats__``: worker ids by their last dispatch call."""
    return f"{namespace}:{HEARTBEATS}"


def queue_of_key(namespace: str, key: str) -> str | None:
    """The queue a key of the layout belongs to (``NS:Q.DQ.msgs`` → ``Q``); None for the
    acks and heartbeat keys and for keys outside ``namespace``."""
    prefix = f"{namespace}:"
    if not key.startswith(prefix):
        return None
    name = key[len(prefix):]
    if is_internal_name(name):
        return None
    for suffix in (DELAY_SUFFIX + MESSAGES_SUFFIX, DEAD_LETTER_SUFFIX + MESSAGES_SUFFIX,
                   MESSAGES_SUFFIX, DEAD_LETTER_SUFFIX, DELAY_SUFFIX):
        if name.endswith(suffix):
            return name[:-len(suffix)] or None
    return name or None


# --- messages -------------------------------------------------------------------------------

def stored_message(message: dramatiq.Message[Any], delay_ms: int | None = None, *,
                   now_ms: int | None = None) -> dramatiq.Message[Any]:
    """``message`` as ``RedisBroker.enqueue`` stores it: a fresh ``redis_message_id`` and,
    when delayed, moved to the delay queue with an ``eta`` (the options in dramatiq's order,
    so the encoded bytes are the same). The ``eta`` counts from ``now_ms`` (Redis' clock, from
    a broker that has one), else from this host's clock: a worker whose clock runs ahead would
    otherwise write an eta that every other worker holds back for as long as its skew."""
    stored = message.copy(options={"redis_message_id": str(uuid.uuid4())})
    if delay_ms is not None:
        start = current_millis() if now_ms is None else now_ms
        stored = stored.copy(queue_name=delay_queue(message.queue_name),
                             options={"eta": start + int(delay_ms)})
    return stored


def broker_now_ms(broker: RedisBroker) -> int | None:
    """The broker's "now" in epoch ms when it keeps one (Redis' clock), else None."""
    now = getattr(broker, "now_ms", None)
    return int(now()) if callable(now) else None


def redis_message_id(message: dramatiq.Message[Any]) -> str:
    """The id ``message`` is stored under in Redis (not its ``message_id``)."""
    return str(message.options["redis_message_id"])


# --- calling dispatch.lua -------------------------------------------------------------------

def dispatch_args(broker: RedisBroker, command: str, queue_name: str, *args: Any,
                  maintenance: bool = False, now_ms: int | None = None) -> list[Any]:
    """The ARGV of one ``dispatch.lua`` call, as ``RedisBroker._dispatch`` builds it; the
    time is ``now_ms``, else the broker's (``now_ms()``, on Redis' clock, when it has one),
    else this host's."""
    if now_ms is None:
        now_ms = broker_now_ms(broker) or current_millis()
    return [command, now_ms, queue_name, broker.broker_id, broker.heartbeat_timeout,
            broker.dead_message_ttl, 1 if maintenance else 0,
            broker._max_unpack_size(), *args]  # type: ignore[no-untyped-call]


def enqueue_args(broker: RedisBroker, message: dramatiq.Message[Any]) -> list[Any]:
    """The ARGV of the ``enqueue`` call that stores ``message`` (made by
    :func:`stored_message`) on its queue."""
    return dispatch_args(broker, "enqueue", message.queue_name, redis_message_id(message),
                         message.encode())


def push_wake_tokens(pipe: Any, namespace: str, queue_name: str, count: int) -> None:
    """Add ``count`` tokens to ``queue_name``'s wake list in ``pipe`` (a ready enqueue's:
    delay queues have none), keeping :data:`WAKE_TOKENS_MAX` at most."""
    if count <= 0 or is_delay_queue(queue_name):
        return
    key = wake_key(namespace, queue_name)
    pipe.rpush(key, *([1] * min(count, WAKE_TOKENS_MAX)))
    pipe.ltrim(key, -WAKE_TOKENS_MAX, -1)


def run_dispatch(broker: RedisBroker, calls: list[list[Any]], *,
                 wake: str | None = None) -> list[Any]:
    """EVALSHA ``dispatch.lua`` once per entry of ``calls`` in one pipelined round trip;
    with ``wake`` (a queue the calls enqueue on), a wake token per call for its idle
    consumers, in the same round trip."""
    script = broker.scripts["dispatch"]
    for attempt in range(2):
        pipe = broker.client.pipeline(transaction=False)
        for args in calls:
            pipe.evalsha(script.sha, 1, broker.namespace, *args)
        if wake is not None:
            push_wake_tokens(pipe, broker.namespace, wake, len(calls))
        results: list[Any] = pipe.execute(raise_on_error=False)
        errors = [r for r in results if isinstance(r, Exception)]
        if not errors:
            return results
        if attempt == 0 and all(isinstance(e, redis.exceptions.NoScriptError) for e in errors):
            # A fresh or restarted Redis: NOSCRIPT fails every call alike, nothing was
            # written, so load the script and send the whole batch again.
            broker.client.script_load(script.script)
            continue
        raise errors[0]
    raise AssertionError("unreachable")  # pragma: no cover
