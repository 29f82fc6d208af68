"""The dummy vendor with ``receipts = false``: the no-op vendor the benchmark sends to."""

from __future__ import annotations

import aiohttp
from crmd_dummy_vendor import DummyVendor, Settings

from crmd.plugins.vendor import Accepted, OutgoingMessage


async def test_noop_mode_accepts_everything_remembers_nothing_and_never_calls_back():
    async with aiohttp.ClientSession() as http:
        vendor = DummyVendor(
            Settings(receipts=False, failure_rate=1.0),
            http,
            "s" * 40,
            "http://127.0.0.1:9/unreachable",
        )
        messages = [OutgoingMessage(f"m{i}", "", "", "hi") for i in range(50)]
        first = await vendor.send(messages)
        again = await vendor.send(messages)
    assert all(isinstance(r, Accepted) for r in first)
    assert [r.message_id for r in first] == [m.message_id for m in messages]
    assert len({r.vendor_message_id for r in first}) == 50  # type: ignore[union-attr]
    assert first == again  # the same answer for a resend, without a memory of it
    assert not vendor.accepted
    assert not vendor.tasks
