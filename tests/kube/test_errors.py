"""Each error answer of the API server becomes the KubeError subclass that names it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from podfleet.kube.errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    QuotaExceeded,
    RequestTimeout,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unreachable,
    error_from_response,
    error_from_status,
)


def status_body(code: int, reason: str, message: str = "", **details: Any) -> bytes:
    """A Status object as a real API server sends it."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "message": message, "reason": reason,
                            "code": code}
    if details:
        body["details"] = details
    return orjson.dumps(body)


def answer(code: int, reason: str, message: str = "", *,
           headers: dict[str, str] | None = None, **details: Any) -> KubeError:
    return error_from_response(code, status_body(code, reason, message, **details),
                               headers or {})


def test_a_400_is_a_bad_request() -> None:
    error = answer(400, "BadRequest", 'container "base" in pod "p" is waiting to start')
    assert type(error) is BadRequest
    assert not error.retryable


def test_a_401_is_unauthorized() -> None:
    assert type(answer(401, "Unauthorized", "Unauthorized")) is Unauthorized


def test_an_rbac_403_is_forbidden_and_final() -> None:
    error = answer(403, "Forbidden", 'pods is forbidden: User "x" cannot create resource')
    assert type(error) is Forbidden
    assert not error.retryable


def test_a_403_for_an_exhausted_resource_quota_is_quota_exceeded_and_retryable() -> None:
    error = answer(403, "Forbidden", 'pods "p" is forbidden: exceeded quota: compute, '
                                     "requested: pods=1, used: pods=10, limited: pods=10")
    assert type(error) is QuotaExceeded
    assert isinstance(error, Forbidden)
    assert error.retryable


def test_a_404_is_not_found() -> None:
    error = answer(404, "NotFound", 'pods "p" not found', name="p", kind="pods")
    assert type(error) is NotFound
    assert error.details == {"name": "p", "kind": "pods"}


def test_a_408_is_a_retryable_request_timeout() -> None:
    error = error_from_response(408, b"request timed out", {})
    assert type(error) is RequestTimeout
    assert error.retryable


def test_a_409_for_a_taken_name_is_already_exists_a_kind_of_conflict() -> None:
    error = answer(409, "AlreadyExists", 'pods "p" already exists')
    assert type(error) is AlreadyExists
    assert isinstance(error, Conflict)


def test_any_other_409_is_a_conflict() -> None:
    error = answer(409, "Conflict", "the object has been modified; please apply your changes")
    assert type(error) is Conflict


def test_a_410_is_gone() -> None:
    error = answer(410, "Expired", "too old resource version: 1 (2)")
    assert type(error) is Gone
    assert error.reason == "Expired"


def test_a_422_is_invalid_a_kind_of_bad_request_and_keeps_its_causes() -> None:
    cause = {"reason": "FieldValueRequired", "message": "Required value",
             "field": "spec.containers[0].image"}
    error = answer(422, "Invalid", "Pod is invalid", causes=[cause])
    assert type(error) is Invalid
    assert isinstance(error, BadRequest)
    assert error.causes == [cause]
    assert not error.retryable


def test_a_429_is_too_many_requests_with_its_retry_after() -> None:
    error = answer(429, "TooManyRequests", "slow down", headers={"Retry-After": "3"})
    assert type(error) is TooManyRequests
    assert (error.retry_after, error.retryable) == (3.0, True)


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_a_5xx_is_a_retryable_server_error(code: int) -> None:
    error = error_from_response(code, b"<html>bad gateway</html>", {})
    assert type(error) is ServerError
    assert error.status == code
    assert error.retryable


def test_an_unnamed_status_is_a_plain_kube_error() -> None:
    error = answer(405, "MethodNotAllowed", "the server does not allow this method")
    assert type(error) is KubeError
    assert not error.retryable


def test_a_body_that_is_not_a_status_gives_the_codes_reason_and_the_text() -> None:
    error = error_from_response(503, b"upstream connect error", {})
    assert (error.reason, error.message) == ("ServiceUnavailable", "upstream connect error")


def test_a_watch_streams_error_event_names_its_error_the_same_way() -> None:
    status = orjson.loads(status_body(410, "Expired", "too old resource version"))
    assert type(error_from_status(410, status)) is Gone


def test_no_answer_is_unreachable_and_not_a_kube_error() -> None:
    assert not issubclass(Unreachable, KubeError)
    assert Unreachable("Timeout", "no answer within 1s").timed_out
    assert Unreachable.retryable
