"""Reading a request's body, within the size limit the server sets."""

from __future__ import annotations

import asyncio

from aiohttp import web

from podfleet.simulator.apiserver.errors import too_large


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body; 413 RequestEntityTooLarge beyond `limit` bytes."""
    length = request.content_length
    if length is not None and length > limit:
        raise too_large(limit)
    if length == 0:
        return b""  # aiohttp's readexactly(0) on a finished body raises
    if length is not None:
        # The usual case (a client sends Content-Length): one read, no copies.
        try:
            return await request.content.readexactly(length)
        except asyncio.IncompleteReadError:
            raise ConnectionResetError("the client sent less than its Content-Length") from None
    body = bytearray()
    async for chunk in request.content.iter_chunked(65536):
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)
