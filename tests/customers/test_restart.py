"""A posted batch is on the ingest stream, not in the process that took it: posted
while no ingest actor runs (crashed, or on another machine that is down), it lands
when one starts."""

from __future__ import annotations

from typing import Any

from crmd.app import Crmd
from crmd.store.tenant import TenantStore
from tests.customers.conftest import Headers, post
from tests.ingest.conftest import wait_done


async def test_a_batch_posted_while_no_ingest_actor_runs_lands_when_one_starts(
    client: Any, auth: Headers, system: Crmd, store: TenantStore
):
    items = [{"externalId": f"R{i}", "name": "R", "email": f"r{i}@x.io"} for i in range(40)]
    status, answer = await post(client, auth, "customers", items)
    assert status == 202 and answer["status"] == "queued", answer
    orders = [{"customer_external_id": "R1", "amount": 3, "orderDate": "2026-01-01"}]
    status, placed = await post(client, auth, "orders", orders)
    assert status == 202
    assert await store["customers"].count_documents({}) == 0  # nobody is storing

    ingest = system.start(("ingest",))
    assert await ingest.wait_healthy(10)
    job = await wait_done(client, auth, answer["uploadId"])
    assert job["status"] == "done" and job["rows"]["persisted"] == 40
    await wait_done(client, auth, placed["uploadId"])
    assert await store["customers"].count_documents({}) == 40
    r1 = await store["customers"].find_one({"customer_external_id": "R1"})
    assert r1 is not None and r1["orderCount"] == 1
