"""SIGKILL in the middle of a campaign: the restarted actor finishes it; no recipient is
handed to the vendor twice, and the stats end exact."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from crmd.app import Crmd
from crmd.config import Config
from crmd.plugins.context import plugin_secret
from crmd.plugins.signature import signed_headers
from tests.campaigns.conftest import placed
from tests.campaigns.test_delivery_loop import load
from tests.ingest.conftest import upload, wait_done

pytestmark = pytest.mark.slow  # kill -9 tests

REPO = Path(__file__).resolve().parents[2]


def actor(config: Config, kind: str, campaign: str, *kill_at: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.campaigns.crash_actor",
        kind,
        config.mongodb.url,
        config.mongodb.database,
        config.redis.url,
        config.redis.stream_prefix,
        campaign,
        *kill_at,
    ]


async def run(argv: list[str]) -> int:
    done = await asyncio.to_thread(subprocess.run, argv, timeout=120, cwd=REPO)
    return done.returncode


async def test_dispatch_killed_mid_campaign_resumes_without_sending_twice(
    client: Any, auth: Any, system: Crmd, config: Config, ingesting: Any
):
    await load(client, auth)
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "k", "message": "Hi {name}", "rule": "spend > 10000 AND visits < 3"},
    )
    campaign = (await made.json())["id"]

    assert await run(actor(config, "dispatch", campaign, "3")) == -9  # after 3 batches of 20
    handed = [d["messageId"] async for d in system.db.handed.find({})]
    assert len(handed) == 60
    assert await run(actor(config, "dispatch", campaign)) == 0

    handed = [d["messageId"] async for d in system.db.handed.find({})]
    logs = [d async for d in system.db.communication_log.find({"campaignId": campaign})]
    assert len(handed) == len(set(handed)) == len(logs) == 100  # each exactly once
    assert {d["_id"] for d in logs} == set(handed)
    assert all(d["vendorMessageId"] for d in logs)
    assert (await system.db.campaigns.find_one({}))["status"] == "sent"


async def test_receipts_killed_mid_batch_end_with_exact_stats(
    client: Any, auth: Any, system: Crmd, config: Config, ingesting: Any
):
    system.config.plugins["dummy_vendor"] = {"delay_min": 3600, "delay_max": 3600}
    await load(client, auth)
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "r", "message": "Hi", "rule": "spend > 10000 AND visits < 3"},
    )
    campaign = (await made.json())["id"]
    assert await run(actor(config, "dispatch", campaign)) == 0
    logs = [d async for d in system.db.communication_log.find({"campaignId": campaign})]
    secret = plugin_secret(system.jwt_secret, "dummy_vendor")
    statuses = ["DELIVERED", "FAILED", "SENT", "CLICKED"]
    for n, log in enumerate(logs):
        body = json.dumps(
            [
                {
                    "messageId": log["_id"],
                    "status": statuses[n % 4],
                    "eventId": f"e{n}",
                    "timestamp": "2026-01-01T00:00:00Z",
                },
                {
                    "messageId": log["_id"],
                    "status": "SENT",  # late, duplicate
                    "eventId": f"e{n}-late",
                    "timestamp": "2026-01-01T00:00:00Z",
                },
            ]
        )
        headers = signed_headers(secret, f"m{uuid.uuid4().hex}", int(time.time()), body.encode())
        response = await client.post(
            "/api/v1/deliveryReceipt/dummy_vendor", data=body, headers=headers
        )
        assert response.status == 202

    assert await run(actor(config, "receipts", campaign, "1")) == -9
    assert await run(actor(config, "receipts", campaign)) == 0

    body = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)).json()
    assert placed(body["stats"]) == {
        "pending": 0,
        "sent": 25,
        "delivered": 50,
        "failed": 25,
        "unknown": 0,
        "cancelled": 0,
        "suppressed": 0,
    }
    assert body["status"] == "completed"


async def test_two_processes_split_one_campaign(
    client: Any, auth: Any, system: Crmd, config: Config, ingesting: Any
):
    rows = "customer_external_id,name,email,spend\n" + "".join(
        f"T{i},N{i},t{i}@x.io,{i}\n" for i in range(2000)
    )
    answer = await (await upload(client, auth, "customers", rows)).json()
    await wait_done(client, auth, answer["uploadId"])
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "split", "message": "Hi {name}", "rule": "spend >= 0"},
    )
    campaign = (await made.json())["id"]
    argv = actor(config, "dispatch", campaign)

    def one(name: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "CONSUMER": name, "VENDOR_RATE": "1000"}
        return subprocess.Popen(argv, env=env, cwd=REPO)

    workers = [one("host-a"), one("host-b")]
    codes = await asyncio.gather(*(asyncio.to_thread(w.wait, 120) for w in workers))
    assert codes == [0, 0]
    handed = [d async for d in system.db.handed.find({})]
    ids = [d["messageId"] for d in handed]
    assert len(ids) == len(set(ids)) == 2000
    shares = {name: sum(1 for d in handed if d["by"] == name) for name in ("host-a", "host-b")}
    assert all(share > 0 for share in shares.values()), shares
