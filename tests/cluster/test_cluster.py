"""Three crmd processes, one system: a web process and two workers on one Redis and one
database, sending through a vendor plugin to a local gateway that records every message
with its arrival time. A worker is SIGKILLed in the middle of an import and a quarter of
the way through a campaign; nothing is lost, the vendor's rate holds for the cluster."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pymongo import MongoClient

from crmd.services.children import free_port
from crmd.services.embedded import Urls
from tests.campaigns.conftest import placed
from tests.commands import Daemon
from tests.ingest.test_import_restart import big_file, persisted

pytestmark = pytest.mark.slow  # several crmd processes

ROWS = 20_000
AUDIENCE = ROWS // 7 + 1  # visits = 0: every seventh row
RATE = 100
SECRET = "gateway-receipt-secret"
WORKER = "ingest,dispatch,receipts,clock"


class Gateway:
    """The vendor's side: takes batches, stamps each message's arrival, and posts a
    signed 'delivered' receipt for each batch back to crmd's web process."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, str]] = []  # (monotonic time, ref, to)
        self.crmd_url = ""
        self.http: aiohttp.ClientSession | None = None
        self.posting: set[asyncio.Task[None]] = set()

    async def send(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        body = await request.json()
        for message in body["messages"]:
            self.arrivals.append((now, message["ref"], message["to"]))
        results = [
            {"ref": m["ref"], "status": "queued", "id": f"gw-{m['ref']}"} for m in body["messages"]
        ]
        task = asyncio.create_task(self.receipts([r["id"] for r in results]))
        self.posting.add(task)
        task.add_done_callback(self.posting.discard)
        return web.json_response({"results": results})

    async def receipts(self, ids: list[str]) -> None:
        await asyncio.sleep(0.2)
        events = [
            {"id": i, "state": "delivered", "ts": int(time.time()), "event": f"e-{i}"} for i in ids
        ]
        body = json.dumps({"events": events}).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert self.http is not None
        for _ in range(30):  # the web process may be busy: the gateway retries, as they do
            try:
                async with self.http.post(
                    f"{self.crmd_url}/api/v1/deliveryReceipt/example_vendor",
                    data=body,
                    headers={"X-Gateway-Signature": signature, "Content-Type": "application/json"},
                ) as response:
                    if response.status < 300:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)


async def test_three_processes_share_the_work_and_lose_nothing_when_a_worker_dies(
    services: Urls, tmp_path: Path, aiohttp_server: Any, example_vendor_site: Path
):
    gateway = Gateway()
    app = web.Application()
    app.router.add_post("/send", gateway.send)
    server = await aiohttp_server(app)
    database, prefix = f"t_{uuid.uuid4().hex[:12]}", f"t{uuid.uuid4().hex[:12]}"
    common = {
        "PYTHONPATH": os.pathsep.join([str(example_vendor_site), os.environ.get("PYTHONPATH", "")]),
        "CRMD_PLUGINS__EXAMPLE_VENDOR__URL": str(server.make_url("/send")),
        "CRMD_PLUGINS__EXAMPLE_VENDOR__API_KEY": "k",
        "CRMD_PLUGINS__EXAMPLE_VENDOR__RECEIPT_SECRET": SECRET,
        "CRMD_PLUGINS__EXAMPLE_VENDOR__RATE": str(RATE),
        "CRMD_STREAMS__CLAIM_IDLE_MS": "3000",
        "CRMD_STREAMS__CLAIM_INTERVAL_MS": "500",
    }

    web_port = free_port()

    def process(name: str, actors: str) -> Daemon:
        return Daemon(
            services.mongodb,
            services.redis,
            web_port if actors == "http" else free_port(),
            database,
            prefix,
            tmp_path / f"{name}.log",
            CRMD_SUPERVISOR__ACTORS=actors,
            CRMD_SERVER__PUBLIC_URL=f"http://127.0.0.1:{web_port}",
            CRMD_STREAMS__CONSUMER_NAME=name,
            **common,
        )

    web_process, first, second = (
        process("web", "http"),
        process("w1", WORKER),
        process("w2", WORKER),
    )
    daemons = [web_process, first, second]
    mongo: MongoClient[dict[str, Any]] = MongoClient(services.mongodb)
    gateway.http = aiohttp.ClientSession()
    gateway.crmd_url = web_process.url
    run = asyncio.to_thread
    try:
        await asyncio.gather(*(run(d.start) for d in daemons))
        for worker in (first, second):  # a worker answers health, not the API
            status, ready = await run(worker.call, "GET", "/readyz", "")
            assert status == 200 and set(ready["actors"]) == {*WORKER.split(","), "health"}
            assert (await run(worker.call, "GET", "/healthz", ""))[0] == 200
            assert (await run(urllib.request.urlopen, f"{worker.url}/metrics")).status == 200
            assert (await run(worker.call, "GET", "/api/v1/campaigns", ""))[0] == 404
            assert (await run(worker.call, "GET", "/", ""))[0] == 404  # no console
        status, ready = await run(web_process.call, "GET", "/readyz", "")
        assert set(ready["actors"]) == {"http"}
        token = await run(web_process.token)

        # -- an import, a worker killed on the way -------------------------------------
        status, answer = await run(
            web_process.call,
            "POST",
            "/api/v1/upload/customers?filename=c.csv",
            token,
            big_file(ROWS),
            "text/csv",
        )
        assert status == 202, answer
        upload = answer["uploadId"]
        while (await run(persisted, web_process, token, upload))["rows"]["persisted"] < ROWS // 5:
            await asyncio.sleep(0.2)
        await run(first.kill)
        job = await until(lambda: run(persisted, web_process, token, upload), "done", 300)
        assert job["rows"]["persisted"] == ROWS
        assert mongo[database].customers.count_documents({}) == ROWS
        await run(first.start)  # back for the campaign

        # -- a campaign, a worker killed a quarter of the way through ------------------
        status, campaign = await run(
            web_process.call,
            "POST",
            "/api/v1/campaigns",
            token,
            json.dumps(
                {
                    "name": "cluster",
                    "message": "Hi {first_name}",
                    "rule": "visits = 0",
                    "vendor": "example_vendor",
                }
            ).encode(),
        )
        assert status in (200, 201), campaign
        assert campaign["audienceSize"] == AUDIENCE
        while len(gateway.arrivals) < AUDIENCE // 4:
            await asyncio.sleep(0.05)
        killed_at = time.monotonic()
        await run(first.kill)
        path = f"/api/v1/campaigns/{campaign['id']}"
        done = await until(lambda: run(web_process.call, "GET", path, token), "completed", 300)
    finally:
        for daemon in daemons:
            await run(daemon.stop)
        await asyncio.gather(*gateway.posting, return_exceptions=True)
        await gateway.http.close()
        mongo.close()

    # Every recipient reached the vendor; a re-send only ever carries the same message id.
    refs: dict[str, set[str]] = defaultdict(set)
    for _, ref, to in gateway.arrivals:
        refs[to].add(ref)
    assert len(refs) == AUDIENCE
    assert all(len(ids) == 1 for ids in refs.values())
    resent = len(gateway.arrivals) - AUDIENCE
    assert resent <= RATE  # at most the batch that was in flight (a second's worth)
    # The vendor's rate held for the cluster: on average, and in every second.
    stamps = sorted(t for t, _, _ in gateway.arrivals)
    busiest = max(
        sum(1 for t in stamps[i : i + 3 * RATE] if t < s + 1) for i, s in enumerate(stamps)
    )
    assert busiest <= 2 * RATE  # the rate, plus one burst
    before = [t for t in stamps if t < killed_at]
    average = (len(before) - RATE) / (before[-1] - before[0])
    assert 0.9 * RATE <= average <= 1.1 * RATE, average
    overall = (len(stamps) - RATE) / (stamps[-1] - stamps[0])
    assert overall <= 1.1 * RATE, overall
    # The stats are exact.
    assert placed(done["stats"]) == {
        "pending": 0,
        "sent": 0,
        "delivered": AUDIENCE,
        "failed": 0,
        "unknown": 0,
        "cancelled": 0,
        "suppressed": 0,
    }


async def until(read: Any, status: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = await read()
        if isinstance(answer, tuple):
            answer = answer[1]
        if answer["status"] == status:
            return answer  # type: ignore[no-any-return]
        assert answer["status"] not in ("failed", "cancelled"), answer
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.3)
