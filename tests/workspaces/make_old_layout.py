"""Makes ``tests/workspaces/data/before_workspaces.json``: a database written by crmd as
it was before workspaces, for the upgrade's test.

Run with the older crmd's source tree (a worktree of the commit named in the file):

    git worktree add --detach /tmp/oldsrc 3d960e0
    .venv/bin/python -m tests.workspaces.make_old_layout /tmp/oldsrc

It starts that crmd (``crmd serve``) on servers of its own, drives it through its API
as two operators would (imports with a bad row, posted records and events, a segment,
a campaign sent to the end with the dummy vendor, a suppression, a flow, a webhook),
stops it, and writes every collection as MongoDB extended JSON."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from bson import json_util
from pymongo import MongoClient

from crmd.testing.servers import real_services

OUT = Path(__file__).parent / "data" / "before_workspaces.json"
PORT = 18931
BASE = f"http://127.0.0.1:{PORT}"
CUSTOMERS = (
    "name,email,phone,spend,visits,lastActive,customer_external_id\n"
    + "".join(
        f"Ann {i},ann{i}@example.com,,{i * 10},{i % 5},2026-11-0{1 + i % 9},A{i}\n"
        for i in range(30)
    )
    + "Bad row,not-an-address,,x,,,\n"
)
ORDERS = "customer_external_id,amount,orderDate,order_external_id\n" + "".join(
    f"A{i},{20 + i},2026-11-1{i % 9},O{i}\n" for i in range(20)
)


async def drive(email: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(BASE) as http:
        signed = await (await http.post("/api/v1/user/dev-login", json={"email": email})).json()
        auth = {"Authorization": f"Bearer {signed['token']}"}
        for kind, text in (("customers", CUSTOMERS), ("orders", ORDERS)):
            form = aiohttp.FormData()
            form.add_field("file", text.encode(), filename=f"{kind}.csv", content_type="text/csv")
            answer = await http.post(f"/api/v1/uploads/{kind}", data=form, headers=auth)
            assert answer.status == 202, await answer.text()
            upload = (await answer.json())["uploadId"]
            for _ in range(300):
                state = await (await http.get(f"/api/v1/uploads/{upload}", headers=auth)).json()
                if state["status"] in ("done", "failed"):
                    break
                await asyncio.sleep(0.1)
        posted = await http.post(
            "/api/v1/customers",
            json=[{"externalId": "P1", "name": "Posted", "email": "posted@example.com"}],
            headers=auth,
        )
        assert posted.status == 202, await posted.text()
        events = [{"customer": "A1", "name": "review", "id": f"{email}-e1"}]
        assert (await http.post("/api/v1/events", json=events, headers=auth)).status == 202
        segment = await http.post(
            "/api/v1/segments", json={"name": "Big", "rule": "spend > 100"}, headers=auth
        )
        assert segment.status == 201, await segment.text()
        campaign = await http.post(
            "/api/v1/campaigns",
            json={"name": "Hello", "message": "Hi {name}", "rule": "spend > 100"},
            headers=auth,
        )
        assert campaign.status == 201, await campaign.text()
        campaign_id = (await campaign.json())["id"]
        for _ in range(600):
            state = await (await http.get(f"/api/v1/campaigns/{campaign_id}", headers=auth)).json()
            if state["status"] in ("completed", "done", "sent"):
                break
            await asyncio.sleep(0.1)
        suppressed = await http.post(
            "/api/v1/suppressions", json={"email": "ann3@example.com"}, headers=auth
        )
        assert suppressed.status in (200, 201), await suppressed.text()
        flow = {
            "name": "Thanks",
            "status": "active",
            "trigger": {"event": "review"},
            "steps": [{"wait": "1d"}, {"send": {"message": "Thanks {name}"}}],
        }
        assert (await http.post("/api/v1/flows", json=flow, headers=auth)).status == 201
        hook = {"url": "http://127.0.0.1:9/hook", "events": ["import.done"]}
        assert (await http.post("/api/v1/webhooks", json=hook, headers=auth)).status == 201
        await asyncio.sleep(2)  # the receipts of the last messages
        return signed["user"]


def main(old_source: str) -> None:
    with tempfile.TemporaryDirectory() as scratch, real_services(Path(scratch), {}) as urls:
        env = {
            **os.environ,
            "PYTHONPATH": old_source,
            "CRMD_MONGODB__URL": urls.mongodb,
            "CRMD_REDIS__URL": urls.redis,
            "CRMD_EMBEDDED__DATA_DIR": scratch,
            "CRMD_AUTH__JWT_SECRET": "x" * 40,
            "CRMD_AUTH__DEV_LOGIN": "true",
        }
        config = Path(old_source) / "crmd.toml"
        server = subprocess.Popen(
            [sys.executable, "-m", "crmd", "--config", str(config), "serve", "--port", str(PORT)],
            env=env,
            cwd=old_source,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    with aiohttp_get(f"{BASE}/healthz"):
                        break
                except OSError:
                    time.sleep(0.3)
            for email in ("ann@example.com", "bo@example.com"):
                asyncio.run(drive(email))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        db = MongoClient(urls.mongodb)["crmd"]
        dump = {
            name: list(db[name].find().sort("_id", 1))
            for name in sorted(db.list_collection_names())
        }
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(
            json_util.dumps(dump, json_options=json_util.CANONICAL_JSON_OPTIONS, indent=1)
        )
        print(f"{OUT}: {sum(map(len, dump.values()))} documents in {len(dump)} collections")


def aiohttp_get(url: str) -> Any:
    import urllib.request

    return urllib.request.urlopen(url, timeout=2)


if __name__ == "__main__":
    main(sys.argv[1])
