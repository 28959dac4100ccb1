"""HMAC signatures on launch messages, so that write access to Redis alone cannot launch pods.

A launch message's body travels as a JSON string beside its signature; the worker verifies the
signature over those exact bytes before it parses anything, so a forged or altered message is
rejected without the launcher ever reading its content.
"""

from __future__ import annotations

import hashlib
import hmac

MIN_KEY_BYTES = 16


class SignatureError(ValueError):
    """A message's signature is missing, malformed or does not match its body."""


class MessageSigner:
    """Signs and verifies message bodies with HMAC-SHA256 and a shared secret."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a signing key must be at least {MIN_KEY_BYTES} bytes long")
        self._key = key

    def sign(self, body: bytes) -> str:
        """The hex signature of ``body``."""
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def verify(self, body: bytes, signature: object) -> None:
        """Raise SignatureError unless ``signature`` is this key's signature of ``body``."""
        if not isinstance(signature, str) or len(signature) != 64:
            raise SignatureError("signature missing or malformed")
        if not hmac.compare_digest(self.sign(body), signature):
            raise SignatureError("signature does not match the message body")
