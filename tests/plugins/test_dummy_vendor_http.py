"""The dummy vendor's HTTP mode: batches over real HTTP to a vendor server, signed
receipts back to crmd's callback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from crmd_dummy_vendor import DummyVendor, Settings, gateway_app

from crmd.plugins.vendor import Accepted, OutgoingMessage
from crmd.services.children import free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "s" * 40


async def test_http_mode_round_trip(aiohttp_server: Any):
    posted: list[tuple[dict[str, str], bytes]] = []

    async def receipt(request: web.Request) -> web.Response:
        posted.append((dict(request.headers), await request.read()))
        return web.json_response({"accepted": 1}, status=202)

    callback = web.Application()
    callback.router.add_post("/cb", receipt)
    crmd_side = await aiohttp_server(callback)
    async with aiohttp.ClientSession() as http:
        server_vendor = DummyVendor(
            Settings(delay_min=0, delay_max=0.05, seed=1, failure_rate=0), http, SECRET, ""
        )
        gateway = await aiohttp_server(gateway_app(server_vendor))
        plugin = DummyVendor(
            Settings(url=str(gateway.make_url("/"))), http, SECRET, str(crmd_side.make_url("/cb"))
        )
        messages = [OutgoingMessage(f"m{i}", f"u{i}@x.io", "", "hi") for i in range(3)]
        results = await plugin.send(messages)
        assert [type(r) for r in results] == [Accepted] * 3
        assert {r.message_id for r in results} == {"m0", "m1", "m2"}
        async with asyncio.timeout(5):
            while not posted:
                await asyncio.sleep(0.02)
        headers, body = posted[0]
        plugin.verify_receipt(headers, body)  # signed with the shared secret
        events = plugin.parse_receipts(headers, body)
        assert {e.message_id for e in events} == {"m0", "m1", "m2"}
        assert {e.status for e in events} == {"SENT"}
        await server_vendor.close()


@pytest.mark.slow  # runs a command as a process
def test_crmd_dummy_vendor_command_serves_and_stops(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "CRMD_EMBEDDED__DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmd",
            "--config",
            str(REPO / "crmd.toml"),
            "dummy-vendor",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        while b"listening" not in (line := proc.stdout.readline()):
            assert line, "the command ended before listening"
        body = json.dumps(
            {
                "callbackUrl": "http://127.0.0.1:1/none",
                "messages": [
                    {"message_id": "m1", "recipient": "a@b.io", "phone": "", "text": "hi"}
                ],
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/send", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            [answer] = json.loads(response.read())
        assert answer["type"] == "accepted" and answer["message_id"] == "m1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
