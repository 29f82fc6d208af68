"""The list is read again when each chunk is handed to the vendor: whoever was
suppressed after the campaign was planned (the rest of a large campaign still sending)
gets nothing from it, and their log says why."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from crmd.app import Crmd
from crmd.campaigns import jobs, planning, stats
from crmd.campaigns.dispatch import send_chunk
from crmd.campaigns.vendors import RateLimits
from crmd.suppressions.links import UnsubscribeLinks
from tests.campaigns.test_delivery_loop import start_campaign
from tests.campaigns.test_planning import plan_jobs, planner
from tests.suppressions.conftest import Gateway, load_people
from tests.suppressions.test_unsubscribe import ONE_CLICK


async def test_who_is_suppressed_between_planning_and_handover_is_not_sent_to(
    client: Any, auth: Any, ingesting: Any, system: Crmd, gateway: Gateway
):
    await load_people(client, auth)
    made = await start_campaign(client, auth, "Large", "Hi {first_name}", "spend > 0")
    store, stream = await planner(client, auth, system)
    seen: set[bytes] = set()
    while batch := await plan_jobs(system, seen):
        for job in batch:
            await planning.plan(store, system.redis, stream, job)
    # Planned, not yet handed over: p3 is suppressed by an operator, p5 unsubscribes.
    added = await client.post(
        "/api/v1/suppressions", json={"email": "p3@example.com", "reason": "asked"}, headers=auth
    )
    assert added.status == 201
    p5 = await system.db.customers.find_one({"email": "p5@example.com"})
    assert p5 is not None
    links = UnsubscribeLinks.from_secret(system.jwt_secret, "http://crmd.test")
    link = links.url(store.user_id, made["id"], customer=str(p5["_id"]))
    assert (await client.post(urlsplit(link).path, data=ONE_CLICK)).status == 200

    limits = RateLimits(system.redis, "test-handover")
    for _, fields in await system.redis.xrange(stream):
        job = jobs.decode(fields[jobs.FIELD])
        if job.kind == "send":
            await send_chunk(store, system.vendors, limits, job, 1, links)
    assert sorted(m.recipient for m in gateway.sent) == [
        "p1@example.com",
        "p2@example.com",
        "p4@example.com",
        "p6@example.com",
    ]
    held = {
        d["recipient"]: d["reason"]
        async for d in system.db.communication_log.find(
            {"campaignId": made["id"], "status": "SUPPRESSED"}
        )
    }
    assert held == {
        "p3@example.com": "on the suppression list: asked",
        "p5@example.com": "on the suppression list: followed the unsubscribe link in a message",
    }
    await stats.refresh(store, made["id"])
    body = await (await client.get(f"/api/v1/campaigns/{made['id']}", headers=auth)).json()
    assert body["stats"]["suppressed"] == 2 and body["audienceSize"] == 6
