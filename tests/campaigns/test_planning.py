"""Planning in stretches, each job short whatever the audience: the plan jobs are run
by hand from the real stream, each twice and a stale copy after the rest (as a crash and
a redelivery would), and the audience ends exactly the customers the rule takes, each
logged once with its own place, and the campaign goes on to sending once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns import jobs, planning
from crmd.campaigns.planning import place_old_logs
from crmd.store.tenant import TenantStore
from tests.campaigns.test_delivery_loop import start_campaign
from tests.ingest.conftest import upload, wait_done

CUSTOMERS = 53


async def plan_jobs(system: Crmd, seen: set[bytes]) -> list[jobs.DispatchJob]:
    """The plan jobs in the dispatch stream not handled yet."""
    stream = system.streams.dispatch
    found = []
    for entry_id, fields in await system.redis.xrange(stream):
        job = jobs.decode(fields[jobs.FIELD])
        if job.kind == "plan" and entry_id not in seen:
            seen.add(entry_id)
            found.append(job)
    return found


async def imported(client: Any, auth: Any, text: str) -> None:
    answer = await (await upload(client, auth, "customers", text)).json()
    await wait_done(client, auth, answer["uploadId"])


async def planner(client: Any, auth: Any, system: Crmd) -> tuple[TenantStore, str]:
    """The signed-in user's store and the dispatch stream, to run plan jobs by hand."""
    user = (await (await client.get("/api/v1/user/me", headers=auth)).json())["user"]["id"]
    return TenantStore(system.db, user), system.streams.dispatch


async def test_a_plan_repeated_and_out_of_order_logs_each_recipient_once(
    client: Any, auth: Any, ingesting: Any, system: Crmd, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(planning, "PLAN_STRETCH", 7)
    text = "customer_external_id,name,email,spend\n" + "".join(
        f"C{i},Person {i},p{i}@example.com,{i}\n" for i in range(1, CUSTOMERS + 1)
    )
    await imported(client, auth, text)
    campaign = await start_campaign(
        client, auth, "Stretches", "Hi {name}", "spend > 10 AND spend <= 50"
    )
    assert campaign["audienceSize"] == 40  # counted by the query when created
    store, stream = await planner(client, auth, system)
    seen: set[bytes] = set()
    ran: list[jobs.DispatchJob] = []
    while batch := await plan_jobs(system, seen):
        for job in batch:
            for _ in range(2):  # redelivered after a crash before its ack
                await planning.plan(store, system.redis, stream, job)
            ran.append(job)
    for job in ran[:3]:  # stale copies, late
        await planning.plan(store, system.redis, stream, job)

    # 53 customers in stretches of 7: eight plan jobs, one per stretch.
    assert sorted({j.start for j in ran}) == [0, 8, 15, 22, 29, 36, 43, 50]
    logs = await planned(system, campaign["id"])
    assert sorted(d["message"] for d in logs) == sorted(f"Hi Person {i}" for i in range(11, 51))
    assert sorted(d["seq"] for d in logs) == list(range(1, 41))
    assert await system.db.communication_log.count_documents({}) == 0  # logged when handed
    doc = await system.db.campaigns.find_one({"name": "Stretches"})
    assert doc is not None
    assert doc["status"] in ("sending", "sent")
    assert (doc["audienceSize"], doc["lastSeq"], doc["stats"]["pending"]) == (40, 40, 40)
    assert (doc["planNext"], doc["planTop"]) == (CUSTOMERS + 1, CUSTOMERS)
    sends = [jobs.decode(fields[jobs.FIELD]) for _, fields in await system.redis.xrange(stream)]
    queued = {j.chunk for j in sends if j.kind == "send"}
    chunks = system.db.send_chunks.find({"_id": {"$in": sorted(queued)}})
    assert {e["_id"] async for c in chunks for e in c["entries"]} == {d["_id"] for d in logs}


async def test_customers_added_while_planning_are_not_in_the_audience(
    client: Any, auth: Any, ingesting: Any, system: Crmd, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(planning, "PLAN_STRETCH", 5)
    first = "customer_external_id,name,email\n" + "".join(
        f"A{i},A {i},a{i}@example.com\n" for i in range(1, 13)
    )
    await imported(client, auth, first)
    campaign = await start_campaign(client, auth, "Fixed", "Hi", "name != ''")
    store, stream = await planner(client, auth, system)
    seen: set[bytes] = set()
    (job,) = await plan_jobs(system, seen)
    await planning.plan(store, system.redis, stream, job)  # the first stretch: the top is fixed
    later = "customer_external_id,name,email\nB1,B 1,b1@example.com\nB2,B 2,b2@example.com\n"
    await imported(client, auth, later)
    while batch := await plan_jobs(system, seen):
        for job in batch:
            await planning.plan(store, system.redis, stream, job)
    assert len(await planned(system, campaign["id"])) == 12


async def test_chunks_planned_before_a_pause_are_queued_again_on_resume(
    client: Any, auth: Any, ingesting: Any, system: Crmd, monkeypatch: pytest.MonkeyPatch
):
    """Paused while planning, the chunk jobs already queued are taken and dropped; the
    resume queues the plan's open chunks again, and planning goes on where it was."""
    monkeypatch.setattr(planning, "PLAN_STRETCH", 10)
    text = "customer_external_id,name,email,spend\n" + "".join(
        f"P{i},Person {i},p{i}@example.com,{i}\n" for i in range(1, 31)
    )
    await imported(client, auth, text)
    campaign = (await start_campaign(client, auth, "P", "Hi", "spend > 0"))["id"]
    store, stream = await planner(client, auth, system)
    seen: set[bytes] = set()
    (first,) = await plan_jobs(system, seen)
    await planning.plan(store, system.redis, stream, first)  # the first stretch
    paused = await client.post(f"/api/v1/campaigns/{campaign}/pause", headers=auth)
    assert (await paused.json())["status"] == "paused"
    await system.redis.delete(stream)  # taken and dropped while paused
    resumed = await client.post(f"/api/v1/campaigns/{campaign}/resume", headers=auth)
    assert resumed.status == 200
    queued = [jobs.decode(f[jobs.FIELD]) for _, f in await system.redis.xrange(stream)]
    open_chunks = {c["_id"] async for c in system.db.send_chunks.find({"done": False})}
    assert open_chunks and {j.chunk for j in queued if j.kind == "send"} == open_chunks
    assert [j.kind for j in queued].count("plan") == 1


async def planned(system: Crmd, campaign: str) -> list[dict[str, Any]]:
    """Every recipient in the campaign's plan, as its chunks hold them."""
    chunks = system.db.send_chunks.find({"campaignId": campaign})
    entries = [e async for chunk in chunks for e in chunk["entries"]]
    assert len({e["_id"] for e in entries}) == len(entries)  # each recipient once
    return entries


async def test_logs_planned_before_places_get_them_once(system: Crmd):
    campaign = ObjectId()
    await system.db.campaigns.insert_one(
        {"_id": campaign, "userId": "u", "name": "old", "plannedAt": datetime.now(UTC)}
    )
    ids = [f"{i:024x}" for i in (5, 3, 9, 1)]
    await system.db.communication_log.insert_many(
        [{"_id": i, "userId": "u", "campaignId": str(campaign)} for i in ids]
    )
    await system.db.counters.delete_one({"_id": "migration:log-places"})
    assert await place_old_logs(system.db) == 4
    placed = {d["_id"]: d["seq"] async for d in system.db.communication_log.find({})}
    assert placed == {i: n for n, i in enumerate(sorted(ids), 1)}
    doc = await system.db.campaigns.find_one({"_id": campaign})
    assert doc is not None and doc["lastSeq"] == 4
    assert await place_old_logs(system.db) == 0  # once
