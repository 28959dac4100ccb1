"""Kubernetes API failures by name, so callers catch what happened instead of comparing codes.

Two families, kept apart on purpose:

- :class:`KubeError` — the API server *answered* with an error. It carries the HTTP status,
  the Status object's ``reason``, ``message`` and ``details``, and the Retry-After delay when
  one was given. Its subclasses name what the answer means:

  ========================  ======  ==========================================================
  class                     status  meaning
  ========================  ======  ==========================================================
  :class:`BadRequest`       400     the request is wrong (a log of a container not started…)
  :class:`Invalid`          422     the object failed validation (a :class:`BadRequest`)
  :class:`Unauthorized`     401     no or expired credentials
  :class:`Forbidden`        403     RBAC says no
  :class:`QuotaExceeded`    403     a ResourceQuota is used up (a :class:`Forbidden`; waiting
                                    helps)
  :class:`NotFound`         404     the object (or namespace) does not exist
  :class:`Conflict`         409     a write lost a race (stale resourceVersion, …)
  :class:`AlreadyExists`    409     the name is taken (a :class:`Conflict`)
  :class:`Gone`             410     the resourceVersion is too old: list again
  :class:`RequestTimeout`   408     a proxy gave up waiting
  :class:`TooManyRequests`  429     throttled (API priority and fairness, or a rate limit)
  :class:`ServerError`      5xx     the server or something in front of it failed
  ========================  ======  ==========================================================

  Any other status is a plain :class:`KubeError`.

- :class:`Unreachable` — no answer came: connection refused or reset, TLS failure, timeout.
  It is *not* a KubeError: nothing is known about what the server did with the request (a
  create may have happened), and "the API said no" and "the network failed" call for
  different handling. Catch ``(KubeError, Unreachable)`` for "any failure".

``retryable`` says whether the same request may succeed later (429, 408, 5xx, quota, and every
:class:`Unreachable`). :func:`error_from_response` is the one mapping from an HTTP answer to
these classes (both clients use it); :func:`error_from_status` does the same for a Status
object that arrives inside a watch stream.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

# How much of a non-Status error body is kept as the message (it may be an HTML error page).
TEXT_MESSAGE_LIMIT = 500


class KubeError(Exception):
    """The API server answered with an error status.

    ``reason`` and ``message`` come from the server's Status object when there is one, so they
    read exactly like a real API server's error (``AlreadyExists``, ``Invalid``, …); without
    one, ``reason`` is the status's usual name and ``message`` the start of the body.
    """

    retryable: ClassVar[bool] = False

    def __init__(self, status: int, reason: str, message: str, *,
                 retry_after: float | None = None, body: Any = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.body = body

    @property
    def details(self) -> dict[str, Any]:
        """The Status object's ``details`` (name, kind, causes, …); empty when there is none."""
        details = self.body.get("details") if isinstance(self.body, dict) else None
        return details if isinstance(details, dict) else {}

    @property
    def causes(self) -> list[dict[str, Any]]:
        """The Status details' ``causes`` (field, reason, message), e.g. of an Invalid."""
        causes = self.details.get("causes")
        return causes if isinstance(causes, list) else []


class BadRequest(KubeError):
    """400: the request itself is wrong; repeating it cannot help."""


class Invalid(BadRequest):
    """422: the object failed the API server's validation (``causes`` name the fields)."""


class Unauthorized(KubeError):
    """401: no credentials, or they expired."""


class Forbidden(KubeError):
    """403: not allowed (RBAC, admission); repeating it cannot help."""


class QuotaExceeded(Forbidden):
    """403 because a ResourceQuota is used up: unlike RBAC, waiting helps."""

    retryable = True


class NotFound(KubeError):
    """404: the object, or its namespace, does not exist."""


class Conflict(KubeError):
    """409: the write lost a race with another one (or the name is taken: AlreadyExists)."""


class AlreadyExists(Conflict):
    """409 with reason AlreadyExists: an object of that name exists already."""


class Gone(KubeError):
    """410: the resourceVersion asked for is too old (compacted away); list again."""


class RequestTimeout(KubeError):
    """408: something between here and the API server gave up waiting."""

    retryable = True


class TooManyRequests(KubeError):
    """429: throttled; ``retry_after`` says when to come back, when the server said."""

    retryable = True


class ServerError(KubeError):
    """5xx: the API server (or a proxy, or etcd behind it) failed; a later try may not."""

    retryable = True


class Unreachable(Exception):
    """No answer from the API server: refused, reset, TLS failure, or timed out.

    ``reason`` is ``"Timeout"`` when the request or stream timed out, ``"ConnectionError"``
    otherwise. What became of the request is unknown (a create may have happened), unless
    ``sent`` is False: no connection was made (refused, no route, a failed TLS handshake),
    so the request never left. ``retry_after`` is always None (no server said anything), so
    retry code can read it from either family.
    """

    retryable: ClassVar[bool] = True

    def __init__(self, reason: str, message: str, *, sent: bool = True) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.sent = sent
        self.retry_after: float | None = None

    @property
    def timed_out(self) -> bool:
        return self.reason == "Timeout"


_BY_STATUS: dict[int, type[KubeError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 408: RequestTimeout,
    409: Conflict, 410: Gone, 422: Invalid, 429: TooManyRequests}

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 408: "Timeout", 409: "Conflict", 410: "Expired",
            413: "RequestEntityTooLarge", 422: "Invalid", 429: "TooManyRequests",
            500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


def error_class(status: int, reason: str, message: str) -> type[KubeError]:
    """The class an error answer of ``status`` (with the Status's reason and message) is."""
    if status == 403 and "exceeded quota" in message:
        return QuotaExceeded
    if status == 409 and reason == "AlreadyExists":
        return AlreadyExists
    if 500 <= status < 600:
        return ServerError
    return _BY_STATUS.get(status, KubeError)


def error_from_status(status: int, body: Any, *, text: str = "",
                      retry_after: float | None = None) -> KubeError:
    """The KubeError for an answer of ``status`` whose parsed body is ``body``.

    A Status object (``kind: Status``) gives the reason and message; anything else gets the
    status's usual reason and ``text`` (the raw body) as the message.
    """
    if isinstance(body, dict) and body.get("kind") == "Status":
        reason = str(body.get("reason") or _REASONS.get(status, "Unknown"))
        message = str(body.get("message") or "")
    else:
        reason = _REASONS.get(status, "Unknown")
        message = text[:TEXT_MESSAGE_LIMIT]
    cls = error_class(status, reason, message)
    return cls(status, reason, message, retry_after=retry_after, body=body)


def error_from_response(status: int, data: bytes, headers: Mapping[str, str]) -> KubeError:
    """The KubeError for an HTTP error answer: its status, raw body and headers."""
    body: Any = None
    with contextlib.suppress(orjson.JSONDecodeError, TypeError):
        body = orjson.loads(data)
    return error_from_status(status, body, text=(data or b"").decode(errors="replace"),
                             retry_after=parse_retry_after(headers.get("Retry-After")))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
