"""A real HTTP endpoint for webhooks to post to (a local aiohttp server that keeps
every request and answers what the test tells it), and the helpers the tests share."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from crmd.app import Crmd
from crmd.webhooks.deliver import deliver_due


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Endpoint:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, str]] = field(default_factory=list)
    """Status and body for the next requests, in order; then 204."""
    stall: float = 0.0
    """Seconds to wait before answering (a slow endpoint)."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def at(self, path: str) -> str:
        return self.url.rstrip("/") + path

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@pytest.fixture
async def endpoint(aiohttp_server: Any) -> AsyncIterator[Endpoint]:
    kept = Endpoint()

    async def receive(request: web.Request) -> web.Response:
        kept.received.append(Received(request.path, dict(request.headers), await request.read()))
        kept.arrived.set()
        if kept.stall:
            await asyncio.sleep(kept.stall)
        status, text = kept.answers.pop(0) if kept.answers else (204, "")
        return web.Response(status=status, text=text or None)

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    server = await aiohttp_server(app)
    kept.url = str(server.make_url("/"))
    yield kept


def expected_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The Standard Webhooks signature, computed here from the spec, not by crmd."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


async def sign_in(client: Any, email: str) -> dict[str, str]:
    response = await client.post("/api/v1/user/dev-login", json={"email": email})
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def subscribe(
    client: Any, auth: dict[str, str], url: str, events: list[str]
) -> dict[str, Any]:
    made = await client.post("/api/v1/webhooks", headers=auth, json={"url": url, "events": events})
    assert made.status == 201, await made.text()
    body: dict[str, Any] = await made.json()
    return body


async def deliver(system: Crmd, later: float = 0.0) -> int:
    """One clock step, ``later`` seconds from now (to reach a retry's due time)."""
    now = datetime.now(UTC) + timedelta(seconds=later)
    assert system.http is not None
    return await deliver_due(system.db, system.http, system.config.webhooks, now)


async def user_id(client: Any, auth: dict[str, str]) -> str:
    me = await (await client.get("/api/v1/user/me", headers=auth)).json()
    return str(me.get("id") or me["user"]["id"])
