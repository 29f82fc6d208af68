"""Live figures over Server-Sent Events: a page's script opens an EventSource; the
server reads the figures every second and sends them when they change, until they are
final. The stream ends when crmd shuts down (the browser then reconnects elsewhere or
later) and after ``LONGEST`` seconds (the browser reconnects at once)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web
from aiohttp_sse import sse_response

EVERY = 1.0
LONGEST = 600.0
CLOSING = web.AppKey("console_closing", asyncio.Event)

Figures = Callable[[], Awaitable[tuple[dict[str, Any], bool]]]
"""Returns (what to send, whether it is final)."""


async def closing_on_shutdown(app: web.Application) -> None:
    app[CLOSING].set()


async def follow(request: web.Request, figures: Figures) -> web.StreamResponse:
    closing = request.app[CLOSING]
    loop = asyncio.get_running_loop()
    ends = loop.time() + LONGEST
    sent: bytes | None = None
    async with sse_response(request) as stream:
        try:
            while stream.is_connected() and not closing.is_set() and loop.time() < ends:
                data, final = await figures()
                encoded = msgspec.json.encode(data)
                if encoded != sent:
                    await stream.send(encoded.decode(), event="figures")
                    sent = encoded
                if final:
                    await stream.send("{}", event="end")
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), EVERY)
        except ConnectionResetError:  # the page went away between two reads
            pass
    return stream
