"""The webhook vendor's fixtures: a local gateway (``webhook_gateway.Gateway``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from webhook_gateway import Gateway


@pytest.fixture
async def gateway(aiohttp_server: Any) -> AsyncIterator[Gateway]:
    serving = Gateway()
    app = web.Application()
    app.router.add_post("/send", serving.send)
    server = await aiohttp_server(app)
    serving.url = str(server.make_url("/send"))
    yield serving
    for task in list(serving.tasks):
        task.cancel()
    await asyncio.gather(*serving.tasks, return_exceptions=True)
