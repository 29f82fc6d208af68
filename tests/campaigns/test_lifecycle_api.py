"""The lifecycle over HTTP: cancels that leave nothing pending, an empty audience that
completes at once, refusals in plain words, and reads that write nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crmd.app import Crmd
from tests.campaigns.conftest import placed
from tests.campaigns.test_delivery_loop import load, start_campaign, wait_status
from tests.counted import written

RULE = "spend > 10000 AND visits < 3"


async def statuses(system: Crmd, campaign: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    async for log in system.db.communication_log.find({"campaignId": campaign}):
        counts[log["status"]] = counts.get(log["status"], 0) + 1
    return counts


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    """Slow enough (20 messages a second) to be cancelled half way."""
    return {"delay_min": 0.05, "delay_max": 0.2, "seed": 3, "failure_rate": 0.2, "rate": 20}


async def test_cancelled_right_after_creation_nothing_is_left_pending(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "c", "Hi {first_name}", RULE)
    cancelled = await client.post(f"/api/v1/campaigns/{campaign['id']}/cancel", headers=auth)
    assert cancelled.status == 200
    assert (await cancelled.json())["status"] == "cancelled"
    # Planning may still be writing its first batch: wait until the dispatch stream is
    # worked through, then nothing may be PENDING.
    await settled(delivering)
    counts = await statuses(delivering, campaign["id"])
    assert counts.get("PENDING", 0) == 0
    body = await (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=auth)).json()
    assert body["stats"]["pending"] == 0
    assert body["stats"]["cancelled"] == counts.get("CANCELLED", 0)
    summary = await (await client.get("/api/v1/dashboard-summary", headers=auth)).json()
    assert "PENDING" not in summary["messages"]


async def test_cancelled_while_sending_the_unsent_become_cancelled(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "c", "Hi {first_name}", RULE)
    async with asyncio.timeout(30):
        while (
            await delivering.db.communication_log.count_documents(
                {"campaignId": campaign["id"], "vendorMessageId": {"$ne": None}}
            )
            < 20
        ):
            await asyncio.sleep(0.05)
    await client.post(f"/api/v1/campaigns/{campaign['id']}/cancel", headers=auth)
    await settled(delivering)
    handed = await delivering.db.communication_log.count_documents(
        {"campaignId": campaign["id"], "vendorMessageId": {"$ne": None}}
    )
    assert 20 <= handed < 100
    # What was handed over gets its receipts; the rest is CANCELLED; nothing stays
    # PENDING for ever.
    async with asyncio.timeout(30):
        while (await statuses(delivering, campaign["id"])).get("PENDING"):
            await asyncio.sleep(0.1)
    counts = await statuses(delivering, campaign["id"])
    assert counts["CANCELLED"] == 100 - handed
    assert counts.get("SENT", 0) + counts.get("FAILED", 0) == handed
    async with asyncio.timeout(30):
        while True:
            body = await (
                await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=auth)
            ).json()
            if body["stats"]["pending"] == 0:
                break
            await asyncio.sleep(0.1)
    stats = body["stats"]
    assert body["status"] == "cancelled"
    assert stats["cancelled"] == 100 - handed
    assert stats["sent"] + stats["failed"] == handed


async def settled(system: Crmd) -> None:
    """Until the dispatch group has been handed every entry and acked them all."""
    stream = system.streams.dispatch
    async with asyncio.timeout(30):
        while True:
            [group] = await system.redis.xinfo_groups(stream)
            newest = await system.redis.xrevrange(stream, count=1)
            caught_up = not newest or group["last-delivered-id"] == newest[0][0]
            if caught_up and group["pending"] == 0:
                return
            await asyncio.sleep(0.05)


async def test_an_empty_audience_completes_at_once(client: Any, auth: Any, delivering: Crmd):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "none", "Hi", "spend > 1000000")
    assert campaign["audienceSize"] == 0
    done = await wait_status(client, auth, campaign["id"], "completed", timeout=10)
    placed_now = placed(done["stats"])
    assert placed_now == dict.fromkeys(placed_now, 0)
    assert done["stats"]["openRate"] is done["stats"]["bounceRate"] is None  # nothing to divide
    assert done["sentAt"] and done["completedAt"]


async def test_refusals_name_the_action_and_the_state(client: Any, auth: Any, delivering: Crmd):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "r", "Hi", RULE)
    await wait_status(client, auth, campaign["id"], "completed")
    base = f"/api/v1/campaigns/{campaign['id']}"
    for action, words in (
        ("pause", "cannot pause: the campaign is completed"),
        ("resume", "cannot resume: the campaign is completed"),
        ("cancel", "cannot cancel: the campaign is completed"),
        ("send", "cannot send: the campaign is completed"),
    ):
        response = await client.post(f"{base}/{action}", headers=auth)
        assert response.status == 409
        error = (await response.json())["error"]
        assert error["message"] == words
        assert error["details"] == {"status": "completed", "action": action}


async def test_enumerated_parameters_refuse_unknown_values(client: Any, auth: Any, system: Crmd):
    campaign = await start_campaign(client, auth, "d", "Hi", "spend > 1")
    response = await client.get(
        f"/api/v1/campaigns/{campaign['id']}/logs?status=BOGUS", headers=auth
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid_parameter"
    assert "PENDING" in error["message"] and "CANCELLED" in error["message"]
    assert error["details"]["field"] == "status"
    assert "SENT" in error["details"]["allowed"]
    ok = await client.get(f"/api/v1/campaigns/{campaign['id']}/logs?status=sent", headers=auth)
    assert ok.status == 200
    refresh = await client.get("/api/v1/segments/000000000000000000000000?refresh=maybe")
    assert refresh.status in (401, 422)


async def test_a_test_send_to_a_stranger_uses_the_defaults(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "t", "Hi {first_name|friend}, {spend|0}", RULE)
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/test", headers=auth, json={"email": "new@x.io"}
    )
    body = await response.json()
    assert body["message"].partition("\n\nUnsubscribe: ")[0] == "Hi friend, 0"
    known = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/test", headers=auth, json={"email": "p1@x.io"}
    )
    text = (await known.json())["message"]
    assert text.partition("\n\nUnsubscribe: ")[0] == "Hi Person1, 20,000"


async def test_reads_write_nothing(client: Any, auth: Any, delivering: Crmd):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "g", "Hi", RULE)
    await wait_status(client, auth, campaign["id"], "completed")
    made = await client.post("/api/v1/segments", headers=auth, json={"rule": "spend > 1"})
    segment = (await made.json())["id"]
    await settled(delivering)
    before = written(delivering)
    base = f"/api/v1/campaigns/{campaign['id']}"
    for _ in range(3):
        for path in (
            base,
            f"{base}/logs",
            f"{base}/summary",
            "/api/v1/campaigns",
            "/api/v1/dashboard-summary",
            "/api/v1/segments",
            f"/api/v1/segments/{segment}",
            f"/api/v1/segments/{segment}?refresh=true",
            "/api/v1/customers",
            "/api/v1/uploads",
        ):
            assert (await client.get(path, headers=auth)).status == 200, path
    assert written(delivering) == before


async def test_listing_segments_is_one_query(client: Any, auth: Any, system: Crmd):
    for n in range(12):
        made = await client.post("/api/v1/segments", headers=auth, json={"rule": f"spend > {n}"})
        assert made.status == 201

    def commands() -> float:
        return sum(
            s.value
            for m in system.metrics.mongo_commands.collect()
            for s in m.samples
            if s.name.endswith("_total") and s.labels["command"] in ("find", "count", "aggregate")
        )

    before = commands()
    listed = await (await client.get("/api/v1/segments", headers=auth)).json()
    assert len(listed["items"]) == 12
    assert all(s["countedAt"] for s in listed["items"])
    # The user (auth), the page, and the total: no count per segment.
    assert commands() - before <= 3
