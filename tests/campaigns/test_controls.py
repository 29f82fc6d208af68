"""Pause, resume, cancel, retry-failed and test send, against the running actors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crmd.app import Crmd
from tests.campaigns.test_delivery_loop import load, wait_status
from tests.campaigns.test_lifecycle_api import settled

RULE = "spend > 10000 AND visits < 3"


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    """Slow enough (20 messages a second) to be paused half way; a third fail."""
    return {"delay_min": 0.05, "delay_max": 0.2, "seed": 3, "failure_rate": 0.3, "rate": 20}


async def create(client: Any, auth: Any) -> dict[str, Any]:
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "c", "message": "Hi {first_name}", "rule": RULE},
    )
    assert made.status == 201
    body: dict[str, Any] = await made.json()
    return body


async def handed(system: Crmd, campaign: str) -> int:
    return await system.db.communication_log.count_documents(
        {"campaignId": campaign, "vendorMessageId": {"$ne": None}}
    )


async def test_pause_stops_sending_and_resume_finishes(client: Any, auth: Any, delivering: Crmd):
    await load(client, auth)
    campaign = await create(client, auth)
    async with asyncio.timeout(20):
        while await handed(delivering, campaign["id"]) < 20:
            await asyncio.sleep(0.05)
    paused = await client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=auth)
    assert (await paused.json())["status"] == "paused"
    # The chunk in hand stops at its next vendor batch; the chunks after it are taken
    # and dropped. Once the stream is worked through, nothing is left that could send.
    await settled(delivering)
    frozen = await handed(delivering, campaign["id"])
    assert frozen < 100
    again = await client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=auth)
    assert again.status == 409
    resumed = await client.post(f"/api/v1/campaigns/{campaign['id']}/resume", headers=auth)
    assert (await resumed.json())["status"] == "sending"
    done = await wait_status(client, auth, campaign["id"], "completed")
    assert await handed(delivering, campaign["id"]) + done["stats"]["failed"] >= 100
    assert done["stats"]["pending"] == 0


async def test_cancel_stops_for_good(client: Any, auth: Any, delivering: Crmd):
    await load(client, auth)
    campaign = await create(client, auth)
    cancelled = await client.post(f"/api/v1/campaigns/{campaign['id']}/cancel", headers=auth)
    assert (await cancelled.json())["status"] == "cancelled"
    await settled(delivering)  # nothing left in the stream that could send
    assert await handed(delivering, campaign["id"]) < 100
    body = await (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=auth)).json()
    assert body["status"] == "cancelled"
    assert (
        await client.post(f"/api/v1/campaigns/{campaign['id']}/resume", headers=auth)
    ).status == 409


async def test_retry_failed_sends_again_to_failed_recipients_only(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    campaign = await create(client, auth)
    first = await wait_status(client, auth, campaign["id"], "completed")
    failed = first["stats"]["failed"]
    assert failed > 0 and "retry_failed" in first["actions"] and first["completedAt"]
    before = {
        d["_id"]: d
        async for d in delivering.db.communication_log.find({"campaignId": campaign["id"]})
    }
    retried = await (
        await client.post(f"/api/v1/campaigns/{campaign['id']}/retry-failed", headers=auth)
    ).json()
    assert retried["retried"] == failed and retried["queued"] == failed
    # Sending again: not completed any more, until it is again.
    assert retried["status"] == "sending" and retried["completedAt"] is None
    second = await wait_status(client, auth, campaign["id"], "completed")
    assert second["completedAt"] > first["completedAt"]
    assert ("retry_failed" in second["actions"]) == (second["stats"]["failed"] > 0)
    after = {
        d["_id"]: d
        async for d in delivering.db.communication_log.find({"campaignId": campaign["id"]})
    }
    for log_id, old in before.items():
        if old["status"] == "FAILED":
            assert after[log_id]["round"] == 1
            assert after[log_id]["vendorMessageId"] != old["vendorMessageId"]
        else:  # untouched: same vendor message, same status
            assert after[log_id]["vendorMessageId"] == old["vendorMessageId"]
            assert after[log_id]["status"] == old["status"]
    assert second["stats"]["failed"] < failed


async def test_test_send_renders_one_message_and_touches_nothing(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    campaign = await create(client, auth)
    await wait_status(client, auth, campaign["id"], "completed")
    before = await (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=auth)).json()
    logs = await delivering.db.communication_log.count_documents({})
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/test", headers=auth, json={"email": "p1@x.io"}
    )
    body = await response.json()
    assert body["message"].startswith("Hi Person1\n\nUnsubscribe: http")
    assert body == {
        "message": body["message"],
        "vendor": "dummy_vendor",
        "accepted": True,
        "vendorMessageId": body["vendorMessageId"],
        "reason": None,
    }
    assert body["vendorMessageId"].startswith("dv_")
    assert await delivering.db.communication_log.count_documents({}) == logs
    after = await (await client.get(f"/api/v1/campaigns/{campaign['id']}", headers=auth)).json()
    assert after["stats"] == before["stats"]


async def test_bad_campaigns_are_refused(client: Any, auth: Any, delivering: Crmd):
    cases = [
        ({"name": "x", "message": "Hi {firstname}", "rule": RULE}, 422, "invalid_template"),
        ({"name": "x", "message": "Hi", "rule": "spend >> 1"}, 422, "invalid_rule"),
        ({"name": "x", "message": "Hi"}, 422, "missing_audience"),
        ({"name": "x", "message": "Hi", "rule": RULE, "vendor": "nope"}, 422, "unknown_vendor"),
        ({"name": "x", "message": "Hi", "segmentId": "0" * 24}, 404, "not_found"),
    ]
    for body, status, code in cases:
        response = await client.post("/api/v1/campaigns", headers=auth, json=body)
        assert response.status == status, body
        assert (await response.json())["error"]["code"] == code
    assert await delivering.db.campaigns.count_documents({}) == 0


async def test_retry_failed_with_nothing_failed_does_not_strand_the_campaign(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "n", "message": "Hi", "rule": "spend > 10000 AND visits = 1"},
    )
    campaign = (await made.json())["id"]
    await wait_status(client, auth, campaign, "completed")
    await delivering.db.communication_log.update_many(
        {"campaignId": campaign, "status": "FAILED"}, {"$set": {"status": "SENT", "rank": 1}}
    )
    retried = await (
        await client.post(f"/api/v1/campaigns/{campaign}/retry-failed", headers=auth)
    ).json()
    assert retried["retried"] == 0
    await wait_status(client, auth, campaign, "completed", timeout=10)


async def test_a_scheduled_time_without_a_zone_is_utc(client: Any, auth: Any, delivering: Crmd):
    await load(client, auth)
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "z", "message": "Hi", "rule": RULE, "scheduledAt": "2999-01-01T10:00:00"},
    )
    assert made.status == 201
    body = await made.json()
    assert body["status"] == "scheduled"
    assert body["scheduledAt"].startswith("2999-01-01T10:00:00")
