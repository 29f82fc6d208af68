"""The ingest actor killed in the middle of a chunk loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crmd.app import Crmd
from crmd.config import Config
from crmd.store.numbering import tally
from tests.ingest.conftest import upload

pytestmark = pytest.mark.slow  # kill -9 tests

REPO = Path(__file__).resolve().parents[2]


def kill_ingest(config: Config, upload_id: str) -> list[str]:
    """The command running the ingest actor alone on ``upload_id`` (``kill_ingest``)."""
    return [
        sys.executable,
        "-m",
        "tests.ingest.kill_ingest",
        config.mongodb.url,
        config.mongodb.database,
        config.redis.url,
        config.redis.stream_prefix,
        upload_id,
    ]


async def test_sigkill_mid_chunk_then_restart_persists_every_row_once(
    client: Any, auth: Any, system: Crmd, config: Config
):
    rows = "customer_external_id,name,email,spend\n" + "".join(
        f"K{i},Name {i},n{i}@x.io,{i}\n" for i in range(1200)
    )
    orders = "customer_external_id,amount,orderDate,order_external_id\n" + "".join(
        f"K{i % 50},10,2024-01-01,O{i}\n" for i in range(100)
    )
    await (await upload(client, auth, "orders", orders)).json()  # orders first, no actor yet
    answer = await (await upload(client, auth, "customers", rows)).json()
    assert answer["rows"]["valid"] == 1200  # three chunks of 500, 500, 200
    argv = kill_ingest(config, answer["uploadId"])

    # Chunk 1 is the orders; dying inside the 3rd chunk: customers' first chunk done,
    # the second written but not counted or acked.
    killed = await asyncio.to_thread(subprocess.run, [*argv, "3"], timeout=120, cwd=REPO)
    assert killed.returncode == -9
    job = await system.db.uploads.find_one({"rows.valid": 1200})
    assert job["rows"]["persisted"] == 500 and job["status"] == "processing"
    assert await system.db.customers.count_documents({}) == 1000

    restarted = await asyncio.to_thread(subprocess.run, argv, timeout=120, cwd=REPO)
    assert restarted.returncode == 0
    job = await system.db.uploads.find_one({"rows.valid": 1200})
    assert job["status"] == "done" and job["rows"]["persisted"] == 1200
    assert await system.db.customers.count_documents({}) == 1200
    assert await system.redis.xpending(system.streams.ingest, "crmd") == {
        "pending": 0,
        "min": None,
        "max": None,
        "consumers": [],
    }
    k7 = await system.db.customers.find_one({"customer_external_id": "K7"})
    assert (k7["orderCount"], k7["orderTotal"]) == (2, 20)


async def test_killed_as_a_chunk_is_counted_the_customers_total_counts_it_once(
    client: Any, auth: Any, system: Crmd, config: Config
):
    """The probe's crash: killed between a chunk's new rows and the tally they join,
    the total stayed a chunk short (199,500 of 200,000). Rows and tally are one
    transaction now (killed as it is committed, both written): the chunk written again
    after the restart counts once. (The restart waits for the
    database to give up the dead transaction, which holds the tally: 60 s.)"""
    rows = "customer_external_id,name,email\n" + "".join(
        f"T{i},Name {i},t{i}@x.io\n" for i in range(1200)
    )
    answer = await (await upload(client, auth, "customers", rows)).json()
    argv = kill_ingest(config, answer["uploadId"])
    killed = await asyncio.to_thread(subprocess.run, [*argv, "2", "tally"], timeout=120, cwd=REPO)
    assert killed.returncode == -9
    restarted = await asyncio.to_thread(subprocess.run, argv, timeout=120, cwd=REPO)
    assert restarted.returncode == 0
    stored = await system.db.customers.count_documents({})
    assert stored == 1200
    me = await (await client.get("/api/v1/user/me", headers=auth)).json()
    assert (await tally(system.db, me["user"]["id"]))["customers"] == stored
    listed = await (await client.get("/api/v1/customers?limit=1", headers=auth)).json()
    assert listed["total"] == stored
