"""JSON answers, with the warnings field validation adds as `Warning` headers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from podfleet.simulator.apiserver.fieldvalidation import warning_headers

JSON = "application/json"


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def json_response(body: bytes, status: int = 200, warnings: Sequence[str] = ()) -> web.Response:
    """`body` (already JSON) as the answer."""
    if not warnings:
        return web.Response(body=body, status=status, headers={"Content-Type": JSON})
    headers = CIMultiDict([("Content-Type", JSON), *warning_headers(warnings)])
    return web.Response(body=body, status=status, headers=headers)
