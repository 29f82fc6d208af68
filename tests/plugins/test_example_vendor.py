"""The example third-party vendor: installed with pip, found through its entry point,
sending to a local aiohttp server that plays the SMS gateway."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from crmd.plugins.manager import describe
from crmd.plugins.vendor import Accepted, Failed, OutgoingMessage, Retry
from crmd.services.embedded import Urls
from tests.conftest import crmd_with

pytestmark = pytest.mark.slow  # installs a plugin

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def installed(example_vendor_site: Path) -> Path:
    return example_vendor_site


def test_crmd_plugins_lists_it_once_installed(installed: Path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-m", "crmd", "--config", str(REPO / "crmd.toml"), "plugins"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "example_vendor: crmd_vendors" in result.stdout.splitlines(), result.stderr


async def test_it_sends_and_reads_receipts_through_a_real_gateway(
    installed: Path, services: Urls, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
):
    received: list[dict[str, Any]] = []

    async def send(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer k-123"
        body = await request.json()
        received.append(body)
        if len(received) == 1:
            return web.Response(status=429, headers={"Retry-After": "2"})
        return web.json_response(
            {
                "results": [
                    {
                        "ref": m["ref"],
                        "status": "queued" if m["to"] else "rejected",
                        "id": f"gw-{i}",
                        "error": "no number",
                    }
                    for i, m in enumerate(body["messages"])
                ]
            }
        )

    app = web.Application()
    app.router.add_post("/send", send)
    gateway = await aiohttp_server(app)
    monkeypatch.syspath_prepend(str(installed))
    settings = {"url": str(gateway.make_url("/send")), "api_key": "k-123", "receipt_secret": "s3"}
    async with crmd_with(services, plugins={"example_vendor": settings}) as crmd:
        assert "example_vendor" in dict(describe(crmd.plugins))
        await uses_it(crmd.vendors.get("example_vendor"))


async def uses_it(vendor: Any) -> None:
    messages = [OutgoingMessage("m1", "", "+9100", "hi"), OutgoingMessage("m2", "", "", "hi")]
    first = await vendor.send(messages)
    assert all(isinstance(r, Retry) and r.after_seconds == 2 for r in first)
    second = await vendor.send(messages)
    assert second == [Accepted("m1", "gw-0"), Failed("m2", "no number")]
    body = json.dumps(
        {"events": [{"id": "gw-0", "state": "delivered", "ts": 1800000000, "event": "e1"}]}
    ).encode()
    signature = hmac.new(b"s3", body, hashlib.sha256).hexdigest()
    vendor.verify_receipt({"X-Gateway-Signature": signature}, body)
    with pytest.raises(ValueError):
        vendor.verify_receipt({"X-Gateway-Signature": "0" * 64}, body)
    [event] = vendor.parse_receipts({}, body)
    assert (event.status, event.vendor_message_id, event.event_id) == ("DELIVERED", "gw-0", "e1")
