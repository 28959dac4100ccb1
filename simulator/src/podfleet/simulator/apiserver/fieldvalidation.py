"""Server-side field validation: the `fieldValidation` query parameter of writes.

A real API server decodes a write into its typed object; a field the type does not have is
dropped, and `fieldValidation` says what else happens: `Strict` refuses the request (400,
`strict decoding error: unknown field "spec.foo"`), `Warn` (the default) answers with a
`Warning` header per field, `Ignore` says nothing. kubectl sends `Strict` once the OpenAPI
document advertises the parameter, which is how `kubectl create -f` catches a typo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from podfleet.simulator.apiserver.errors import bad_request
from podfleet.simulator.apiserver.schema import TYPES, unknown_fields

STRICT = "Strict"
WARN = "Warn"
IGNORE = "Ignore"
_DIRECTIVES = (IGNORE, WARN, STRICT)


def directive(query: Any) -> str:
    """The request's fieldValidation directive (`Warn` when absent); 400 when unknown."""
    value = query.get("fieldValidation")
    if not value:
        return WARN
    if value not in _DIRECTIVES:
        raise bad_request(
            f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{value}"'
        )
    return str(value)


def check_fields(how: str, kind: str, obj: dict[str, Any]) -> list[str]:
    """Drop the fields `kind` does not have from `obj`; returns the warnings to send.

    Under `Strict` an unknown field is a 400 BadRequest instead, worded as the API server's
    strict decoder words it.
    """
    if kind not in TYPES:
        return []
    unknown = unknown_fields(kind, obj, prune=how != STRICT)
    if not unknown:
        return []
    problems = [f'unknown field "{path}"' for path in unknown]
    if how == STRICT:
        raise bad_request(
            f'{kind} in version "v1" cannot be handled as a {kind}: strict decoding error: '
            + ", ".join(problems)
        )
    return problems if how == WARN else []


def warning_headers(warnings: Sequence[str]) -> list[tuple[str, str]]:
    """`Warning` headers in RFC 7234 form, as kubectl and client-go print them."""
    return [("Warning", '299 - "' + w.replace('"', '\\"') + '"') for w in warnings]
