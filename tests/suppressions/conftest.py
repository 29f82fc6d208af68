"""A vendor server for the dummy vendor's HTTP mode that keeps every message it is handed
(so a test reads the OutgoingMessage fields crmd sent), refuses the addresses a test
names, and otherwise answers and calls crmd back with signed receipts as the real
``crmd dummy-vendor`` server does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from crmd_dummy_vendor import DummyVendor, SendRequest, Settings

from crmd.plugins.vendor import Failed, OutgoingMessage, SendResult
from tests.ingest.conftest import upload, wait_done

SECRET = "vendor-and-crmd-share-this-secret-0123456789"


@dataclass
class Gateway:
    url: str
    vendor: DummyVendor
    sent: list[OutgoingMessage] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    """Address → the reason it is refused with (a Failed result)."""

    def to(self, email: str) -> list[OutgoingMessage]:
        return [m for m in self.sent if m.recipient == email]


@pytest.fixture
async def gateway(aiohttp_server: Any) -> AsyncIterator[Gateway]:
    async with aiohttp.ClientSession() as http:
        settings = Settings(delay_min=0.05, delay_max=0.2, failure_rate=0, seed=3)
        kept = Gateway("", DummyVendor(settings, http, SECRET, ""))

        async def send(request: web.Request) -> web.Response:
            batch = msgspec.json.decode(await request.read(), type=SendRequest)
            kept.sent += batch.messages
            results: list[SendResult] = [
                Failed(m.message_id, kept.refuse[m.recipient])
                for m in batch.messages
                if m.recipient in kept.refuse
            ]
            taken = [m for m in batch.messages if m.recipient not in kept.refuse]
            results += kept.vendor.simulate(taken, batch.callbackUrl)
            return web.Response(body=msgspec.json.encode(results), content_type="application/json")

        app = web.Application()
        app.router.add_post("/send", send)
        server = await aiohttp_server(app)
        kept.url = str(server.make_url("/"))
        yield kept
        await kept.vendor.close()


@pytest.fixture
def campaigns_settings() -> dict[str, Any]:
    """A clock that ticks twice a second (below)."""
    return {"clock_interval_seconds": 0.5, "clock_lease_seconds": 3.0}


@pytest.fixture
def delivering_actors() -> tuple[str, ...]:
    """Dispatch and receipts, and the clock as a daemon runs it: the gateway calls back
    within 50-200 ms, and on a loaded machine a receipt can come before crmd has logged
    its message; the clock matches such receipts again (``rematch_unknown``), without
    which the campaign would never complete."""
    return ("dispatch", "receipts", "clock")


@pytest.fixture
def vendor_settings(gateway: Gateway) -> dict[str, Any]:
    """The dummy vendor hands its batches to the gateway above."""
    return {"url": gateway.url, "secret": SECRET}


PEOPLE = "customer_external_id,name,email,spend,visits\n" + "".join(
    f"P{i},Person{i} Surname,p{i}@example.com,{1000 * i},{i}\n" for i in range(1, 7)
)


async def load_people(client: Any, auth: dict[str, str], text: str = PEOPLE) -> None:
    answer = await (await upload(client, auth, "customers", text)).json()
    assert (await wait_done(client, auth, answer["uploadId"]))["status"] == "done"


async def suppressed(client: Any, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The caller's suppression list, by address."""
    listed = await (await client.get("/api/v1/suppressions", headers=auth)).json()
    return {item["email"]: item for item in listed["items"]}
