"""Dead-lettering of messages that must never be retried: forged or malformed launch messages.

An actor raises :class:`DeadLetter`; this middleware makes every actor declare it as an
exception it ``throws``, so dramatiq's Retries middleware does not retry it but fails the
message at once, which moves it to the queue's dead-letter set (``<queue>.XQ``) where an
operator can inspect it. The reason is logged and counted in ``MESSAGES_REJECTED``.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from podfleet.monitoring.metrics import MESSAGES_REJECTED, MessageRejectReason

logger = logging.getLogger("podfleet.workers.dead_letter")


class DeadLetter(Exception):
    """Raised by an actor: dead-letter this message now, with ``reason``; never retry it.

    ``kind`` is a short label for metrics (``signature``, ``malformed``).
    """

    def __init__(self, reason: str,
                 kind: MessageRejectReason = MessageRejectReason.MALFORMED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


class DeadLetters(dramatiq.Middleware):
    """Turns :class:`DeadLetter` into an immediate move to the dead-letter queue."""

    def before_declare_actor(self, broker: dramatiq.Broker, actor: dramatiq.Actor[Any, Any]
                             ) -> None:
        throws = actor.options.get("throws") or ()
        if not isinstance(throws, tuple):
            throws = (throws,)
        if DeadLetter not in throws:
            actor.options["throws"] = (*throws, DeadLetter)

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy,
                              *, result: Any = None, exception: BaseException | None = None
                              ) -> None:
        if not isinstance(exception, DeadLetter):
            return
        logger.error("dead-lettering message %s on %s: %s", message.message_id,
                     message.queue_name, exception.reason)
        MESSAGES_REJECTED.labels(reason=exception.kind).inc()
        message.fail()
