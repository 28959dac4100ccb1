"""Quarantine of undecodable queue entries, so one garbage entry costs good messages nothing.

dramatiq's Redis consumer decodes each fetched entry; one that is not a dramatiq message
(garbage written into the queue, a truncated write) makes it raise, and the worker then
restarts the consumer, dropping the messages it had prefetched. Those stay unacked in this
live worker's set, so nobody launches them, and the garbage itself is never dead-lettered:
it moves on to whoever inherits the set. This consumer catches the decode error instead,
finds the entry's id among the messages it holds, moves it to the queue's dead-letter set
(``<queue>.XQ``) with a logged reason, counts it, and goes on with the next message.

A decodable message without the ``redis_message_id`` option (written into the queue by
something other than a dramatiq RedisBroker) would run, then fail its ack (dramatiq acks by
that option), stay in the worker's unacked set and run again after every restart. It is
dead-lettered the same way, before it runs.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from dramatiq import Message
from dramatiq.brokers.redis import _RedisConsumer
from dramatiq.errors import ConnectionClosed, DecodeError

from podfleet.broker import redis_layout
from podfleet.broker.redis_clock_broker import RedisClockBroker
from podfleet.monitoring.metrics import MESSAGES_REJECTED, MessageRejectReason

logger = logging.getLogger("podfleet.workers.quarantine")

# The option dramatiq's Redis broker acks a message by (podfleet.broker.redis_layout).
REDIS_MESSAGE_ID = "redis_message_id"


class QuarantiningConsumer(_RedisConsumer):
    """A Redis consumer that dead-letters what it cannot decode and keeps going."""

    def __next__(self) -> Any:
        while True:
            try:
                proxy = super().__next__()  # type: ignore[no-untyped-call]
            except DecodeError as exc:
                self._quarantine(exc.data, exc.error)
                continue
            if proxy is not None and REDIS_MESSAGE_ID not in proxy.options:
                self._quarantine_unacknowledgeable(proxy)
                continue
            return proxy

    def _quarantine_unacknowledgeable(self, proxy: Any) -> None:
        """Dead-letter a message that has no ``redis_message_id``: found among the entries
        this consumer holds by its dramatiq message id."""
        broker = self.broker
        acks = redis_layout.acks_key(broker.namespace, broker.broker_id, self.queue_name)
        messages = redis_layout.messages_key(broker.namespace, self.queue_name)
        self.queued_message_ids.discard(proxy.message_id)
        try:
            held = sorted(broker.client.smembers(acks))
            stored = broker.client.hmget(messages, held) if held else []
            for entry_id, data in zip(held, stored, strict=True):
                if data is not None and _message_id(data) == proxy.message_id:
                    broker.do_nack(self.queue_name, entry_id.decode())
                    break
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        MESSAGES_REJECTED.labels(reason=MessageRejectReason.MALFORMED).inc()
        logger.error("dead-lettered message %s on %s: it has no %s option (not written by "
                     "a dramatiq RedisBroker), so it could never be acknowledged",
                     proxy.message_id, self.queue_name, REDIS_MESSAGE_ID)

    def _quarantine(self, data: bytes, error: BaseException) -> None:
        broker = self.broker
        acks = redis_layout.acks_key(broker.namespace, broker.broker_id, self.queue_name)
        messages = redis_layout.messages_key(broker.namespace, self.queue_name)
        try:
            held = sorted(broker.client.smembers(acks))
            stored = broker.client.hmget(messages, held) if held else []
            found = [m for m, d in zip(held, stored, strict=True) if d == data]
            for message_id in found[:1]:
                broker.do_nack(self.queue_name, message_id.decode())
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]
        MESSAGES_REJECTED.labels(reason=MessageRejectReason.UNDECODABLE).inc()
        preview = data[:80] if isinstance(data, bytes) else repr(data)[:80]
        logger.error("dead-lettered an undecodable entry on %s (%s: %s): %r",
                     self.queue_name, type(error).__name__, error, preview)


def _message_id(data: bytes) -> str | None:
    try:
        return str(Message.decode(data).message_id)
    except DecodeError:
        return None


class QuarantiningRedisBroker(RedisClockBroker):
    """podfleet's RedisBroker (on Redis' clock) with :class:`QuarantiningConsumer` as its
    consumer."""

    @property
    def consumer_class(self) -> type[QuarantiningConsumer]:
        return QuarantiningConsumer
