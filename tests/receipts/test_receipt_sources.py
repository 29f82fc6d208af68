"""``crmd_receipt_sources``: a plugin's receipt source answers at
``/api/v1/deliveryReceipt/<name>`` when no vendor has that name; its events are queued
with the vendors it reports for; it fails closed as a vendor does; a nonce its
signature covers is taken once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from crmd.app import Crmd, open_crmd
from crmd.http.keys import RECEIPTS
from crmd.plugins import Nonce, PluginContext, ReceiptEvent, hookimpl
from crmd.plugins.manager import get_plugin_manager
from crmd.receipts import batch
from crmd.runtime.daemon import StartupError
from crmd.services.embedded import Urls
from crmd.testing import make_test_config
from crmd.testing.servers import forget

AT = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


class Probe:
    """A source whose answers the test sets: ``mode`` says how verify_receipt behaves."""

    def __init__(self, name: str = "probe") -> None:
        self.name = name
        self.reports_for = ("smtp",)
        self.mode = "ok"
        self.closed = False
        self.release = threading.Event()

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> Nonce | None:
        if self.mode == "raise":
            raise RuntimeError("a bug in the plugin")
        if self.mode == "hang":
            self.release.wait(10)
        if headers.get("X-Nonce"):
            return Nonce(headers["X-Nonce"], 60)
        return None

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        ids = body.decode().split(",")
        return [
            ReceiptEvent("DELIVERED", AT, f"e-{i}-{m}", message_id=m) for i, m in enumerate(ids)
        ]

    async def close(self) -> None:
        self.closed = True


class Offers:
    def __init__(self, *sources: Probe) -> None:
        self.sources = list(sources)

    @hookimpl
    def crmd_receipt_sources(self, context: PluginContext) -> list[Probe]:
        return self.sources


@contextlib.asynccontextmanager
async def crmd_offering(services: Urls, *sources: Probe) -> AsyncIterator[Crmd]:
    config = make_test_config(services)
    manager = get_plugin_manager(config.plugins, plugins={"probe_plugin": Offers(*sources)})
    try:
        async with open_crmd(config, plugin_manager=manager) as crmd:
            yield crmd
    finally:
        await forget(config)


async def queued(crmd: Crmd) -> list[batch.ReceiptBatch]:
    entries = await crmd.redis.xrange(crmd.streams.receipts)
    return [batch.decode(fields[batch.FIELD]) for _, fields in entries]


async def test_a_sources_events_are_queued_with_the_vendors_it_reports_for(
    services: Urls, aiohttp_client: Any
):
    probe = Probe()
    async with crmd_offering(services, probe) as crmd:
        client = await aiohttp_client(crmd.app)
        answer = await client.post("/api/v1/deliveryReceipt/probe", data=b"m1,m2,,m1")
        assert answer.status == 202
        # The event naming nothing is dropped (counted); the rest are queued.
        assert await answer.json() == {"accepted": 3, "duplicates": 0}
        [queued_batch] = await queued(crmd)
        assert (queued_batch.vendor, queued_batch.reports_for) == ("probe", ["smtp"])
        assert [e.message_id for e in queued_batch.events] == ["m1", "m2", "m1"]
        nothing = await client.post("/api/v1/deliveryReceipt/probe", data=b"")
        assert await nothing.json() == {"accepted": 0, "duplicates": 0}
        assert len(await queued(crmd)) == 1  # nothing to queue, no empty batch
        missing = await client.post("/api/v1/deliveryReceipt/nobody", data=b"m1")
        assert missing.status == 404
        assert "probe" in (await missing.json())["error"]["message"]
    assert probe.closed


async def test_a_source_that_raises_or_hangs_refuses_its_callback(
    services: Urls, aiohttp_client: Any
):
    probe = Probe()
    async with crmd_offering(services, probe) as crmd:
        client = await aiohttp_client(crmd.app)
        crmd.app[RECEIPTS].budget = 0.5
        probe.mode = "raise"
        raised = await client.post("/api/v1/deliveryReceipt/probe", data=b"m1")
        assert raised.status == 401
        assert "a bug in the plugin" in (await raised.json())["error"]["message"]
        probe.mode = "hang"
        started = time.monotonic()
        hung = await client.post("/api/v1/deliveryReceipt/probe", data=b"m1")
        assert hung.status == 401 and time.monotonic() - started < 5
        probe.release.set()
        assert await queued(crmd) == []


async def test_a_nonce_is_taken_once_for_one_body_and_refused_for_another(
    services: Urls, aiohttp_client: Any
):
    async with crmd_offering(services, Probe()) as crmd:
        client = await aiohttp_client(crmd.app)
        url, nonce = "/api/v1/deliveryReceipt/probe", {"X-Nonce": "token-1"}
        assert (await client.post(url, data=b"m1", headers=nonce)).status == 202
        assert (await client.post(url, data=b"m1", headers=nonce)).status == 202  # redelivered
        replayed = await client.post(url, data=b"m2", headers=nonce)
        assert replayed.status == 401 and "replayed" in (await replayed.json())["error"]["message"]
        assert [b.events[0].message_id for b in await queued(crmd)] == ["m1", "m1"]
        keys = [k async for k in crmd.redis.scan_iter(f"{crmd.streams.receipts}:nonce:*")]
        assert len(keys) == 1 and 0 < await crmd.redis.ttl(keys[0]) <= 60


@pytest.mark.parametrize("name", ["dummy_vendor", "probe"])
async def test_a_source_named_like_a_vendor_or_another_source_stops_start_up(
    services: Urls, name: str
):
    with pytest.raises(StartupError, match=f"receipt source '{name}': a vendor or another"):
        async with crmd_offering(services, Probe("probe"), Probe(name)):
            pass
