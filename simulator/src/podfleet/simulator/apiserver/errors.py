"""API errors as a real Kubernetes API server shapes them: a `Status` object and an HTTP code.

Clients (the official one, kubectl, client-go) decode the body, not only the code: they read
`reason` to tell AlreadyExists from Conflict, and `details.causes` to show which field was wrong.
So every error leaves the simulator through `ApiError`, built by the helpers below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

CAUSE_REQUIRED = "FieldValueRequired"
CAUSE_INVALID = "FieldValueInvalid"
CAUSE_DUPLICATE = "FieldValueDuplicate"
CAUSE_TOO_LONG = "FieldValueTooLong"
CAUSE_FORBIDDEN = "FieldValueForbidden"
CAUSE_NOT_SUPPORTED = "FieldValueNotSupported"


@dataclass(frozen=True)
class FieldError:
    """One field's problem, rendered like apimachinery's field.Error."""

    field: str
    reason: str
    detail: str = ""
    value: Any = None
    has_value: bool = False

    def message(self) -> str:
        """The cause message without the field path (`Invalid value: "x": detail`)."""
        if self.reason == CAUSE_REQUIRED:
            head = "Required value"
        elif self.reason == CAUSE_DUPLICATE:
            head = f"Duplicate value: {_render(self.value)}"
        elif self.reason == CAUSE_TOO_LONG:
            head = "Too long"
        elif self.reason == CAUSE_FORBIDDEN:
            head = "Forbidden"
        elif self.reason == CAUSE_NOT_SUPPORTED:
            head = f"Unsupported value: {_render(self.value)}"
        else:
            head = f"Invalid value: {_render(self.value)}"
        return f"{head}: {self.detail}" if self.detail else head

    def __str__(self) -> str:
        return f"{self.field}: {self.message()}"


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(path, CAUSE_REQUIRED, detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError(path, CAUSE_INVALID, detail, value, True)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(path, CAUSE_DUPLICATE, "", value, True)


def too_long(path: str, detail: str) -> FieldError:
    return FieldError(path, CAUSE_TOO_LONG, detail)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(path, CAUSE_FORBIDDEN, detail)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode() if value is not None else "null"


def status_body(
    code: int,
    reason: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Failure `Status` object exactly as the API server encodes it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = dict(details)
    body["code"] = code
    return body


def status_response(
    code: int,
    reason: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An HTTP response carrying a Failure `Status` (for fault injection and the API)."""
    return web.Response(
        status=code,
        body=orjson.dumps(status_body(code, reason, message, details=details)),
        content_type="application/json",
        headers=headers,
    )


@dataclass
class ApiError(Exception):
    """An error answered with a `Status` body; raised anywhere below a handler."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def body(self) -> dict[str, Any]:
        return status_body(self.code, self.reason, self.message, details=self.details)

    def response(self) -> web.Response:
        return status_response(
            self.code, self.reason, self.message, details=self.details, headers=self.headers
        )


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource}
    )


def already_exists(resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{resource} "{name}" already exists',
        {"name": name, "kind": resource},
    )


def conflict(resource: str, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "kind": resource},
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid_object(kind: str, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid: `Pod "x" is invalid: a` for one error, `[a, b]` for several."""
    rendered = [str(e) for e in errors]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {summary}',
        {
            "name": name,
            "kind": kind,
            "causes": [
                {"reason": e.reason, "message": e.message(), "field": e.field} for e in errors
            ],
        },
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def page_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def resource_not_found(group: str, resource: str, name: str) -> ApiError:
    """A path naming a resource this server does not serve; the details say which."""
    details = {"group": group, "kind": resource}
    if name:
        details["name"] = name
    return ApiError(404, "NotFound", "the server could not find the requested resource", details)


def too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def unsupported_media_type(content_type: str, supported: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(supported)}",
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")
