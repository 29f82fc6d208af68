"""A campaign whose plan job was lost (crmd died between saving the campaign, or a
stretch of its plan, and queueing the job) is found by the clock and planned again:
its job queued once, however many clocks look, never while a job for it still waits,
and each recipient handed over once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns import jobs, planning
from crmd.campaigns.clock import recover_stranded
from crmd.store.tenant import TenantStore
from crmd.streams import GROUP
from crmd.streams.worker import ensure_group
from tests.campaigns.test_delivery_loop import load, start_campaign, wait_status

RULE = "spend > 10000 AND visits < 3"  # 100 of the 400 customers ``load`` imports
BOUND = 600


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    return {"delay_min": 3600, "delay_max": 3600}  # no receipts: a sent campaign stays sent


async def recover(system: Crmd, now: datetime) -> int:
    return await recover_stranded(system.db, system.redis, system.streams.dispatch, BOUND, now)


async def plan_jobs(system: Crmd, campaign: str) -> list[jobs.DispatchJob]:
    """The campaign's plan jobs in the dispatch stream."""
    found = [
        jobs.decode(f[jobs.FIELD]) for _, f in await system.redis.xrange(system.streams.dispatch)
    ]
    return [j for j in found if j.kind == "plan" and j.campaign == campaign]


async def lose_plan_jobs(system: Crmd, campaign: str) -> None:
    stream = system.streams.dispatch
    for entry_id, fields in await system.redis.xrange(stream):
        job = jobs.decode(fields[jobs.FIELD])
        if job.kind == "plan" and job.campaign == campaign:
            await system.redis.xdel(stream, entry_id)


async def backdate(system: Crmd, campaign: str) -> None:
    """Its last move an hour ago."""
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await system.db.campaigns.update_one(
        {"_id": ObjectId(campaign)}, {"$set": {"updatedAt": hour_ago}}
    )


async def handed_over_once(system: Crmd, campaign: str) -> None:
    logs = [d async for d in system.db.communication_log.find({"campaignId": campaign})]
    assert len(logs) == 100 == len({d["customerId"] for d in logs})


async def test_a_campaign_saved_without_its_plan_job_is_planned_once(
    client: Any, auth: Any, ingesting: Any, system: Crmd, monkeypatch: pytest.MonkeyPatch
):
    read_stream = jobs.awaiting_plan

    async def slow_to_read(redis: Any, stream: str) -> set[str]:
        found = await read_stream(redis, stream)
        await asyncio.sleep(0.3)  # two clocks both read the stream before either queues
        return found

    monkeypatch.setattr(jobs, "awaiting_plan", slow_to_read)
    await load(client, auth)
    lost = (await start_campaign(client, auth, "lost", "Hi {name}", RULE))["id"]
    await lose_plan_jobs(system, lost)
    await backdate(system, lost)
    fresh = (await start_campaign(client, auth, "fresh", "Hi {name}", RULE))["id"]
    await lose_plan_jobs(system, fresh)  # lost too, but only just: not yet looked at

    now = datetime.now(UTC)
    assert sorted(await asyncio.gather(recover(system, now), recover(system, now))) == [0, 1]
    assert len(await plan_jobs(system, lost)) == 1
    assert await plan_jobs(system, fresh) == []
    assert await recover(system, now) == 0
    [job] = await plan_jobs(system, lost)
    assert job.start == 0  # never planned: from the start
    # A bound later the other is stranded too; the first is looked at again, but its job
    # still waits in the stream, so no other is added.
    assert await recover(system, now + timedelta(seconds=2 * BOUND)) == 1
    assert (len(await plan_jobs(system, lost)), len(await plan_jobs(system, fresh))) == (1, 1)

    supervisor = system.start(("dispatch", "receipts"))
    assert await supervisor.wait_healthy(10)
    for campaign in (lost, fresh):
        await wait_status(client, auth, campaign, "sent")
        await handed_over_once(system, campaign)


async def test_a_plan_job_in_a_consumers_hands_is_not_queued_again(
    client: Any, auth: Any, ingesting: Any, system: Crmd
):
    await load(client, auth)
    campaign = (await start_campaign(client, auth, "held", "Hi", RULE))["id"]
    stream = system.streams.dispatch
    await ensure_group(system.redis, stream, GROUP)
    reply = await system.redis.xreadgroup(GROUP, "elsewhere", {stream: ">"}, count=10)
    [(entry_id, _)] = reply[0][1]  # delivered, not acknowledged: a consumer works on it
    await backdate(system, campaign)
    now = datetime.now(UTC)
    assert await recover(system, now) == 0
    await system.redis.xack(stream, GROUP, entry_id)  # acknowledged, yet nothing planned
    later = now + timedelta(seconds=2 * BOUND)
    assert await recover(system, later) == 1
    assert await recover(system, later) == 0


async def test_a_campaign_stranded_while_planning_goes_on_where_planning_stopped(
    client: Any, auth: Any, ingesting: Any, system: Crmd, monkeypatch: pytest.MonkeyPatch
):
    """The plan job of its second stretch is gone: the job queued again starts there,
    and running every plan job twice at once (two processes, a redelivery) still plans
    each recipient once."""
    monkeypatch.setattr(planning, "PLAN_STRETCH", 50)
    await load(client, auth)
    campaign = (await start_campaign(client, auth, "mid", "Hi {name}", RULE))["id"]
    user = (await (await client.get("/api/v1/user/me", headers=auth)).json())["user"]["id"]
    store, stream = TenantStore(system.db, user), system.streams.dispatch
    [first] = await plan_jobs(system, campaign)
    await planning.plan(store, system.redis, stream, first)
    await lose_plan_jobs(system, campaign)
    await backdate(system, campaign)

    assert await recover(system, datetime.now(UTC)) == 1
    [job] = await plan_jobs(system, campaign)
    assert job.start == 51  # where planning stopped, not from the start
    seen = {first.start}
    while todo := [j for j in await plan_jobs(system, campaign) if j.start not in seen]:
        for job in todo:
            seen.add(job.start)
            await asyncio.gather(*(planning.plan(store, system.redis, stream, job) for _ in "ab"))
    entries = [e async for c in system.db.send_chunks.find({}) for e in c["entries"]]
    assert len(entries) == 100 == len({e["customerId"] for e in entries})
    assert sorted(e["seq"] for e in entries) == list(range(1, 101))
    doc = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
    assert doc is not None and (doc["status"], doc["lastSeq"]) == ("sending", 100)

    supervisor = system.start(("dispatch", "receipts"))
    assert await supervisor.wait_healthy(10)
    await wait_status(client, auth, campaign, "sent")
    await handed_over_once(system, campaign)
