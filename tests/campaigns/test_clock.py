"""Scheduled campaigns start on time; receipt windows close into UNKNOWN."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns import jobs, planning
from crmd.campaigns.clock import close_receipt_windows, start_due_campaigns
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import placed
from tests.campaigns.test_delivery_loop import load, start_campaign, wait_status


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    return {"delay_min": 3600, "delay_max": 3600}  # no receipts will come


async def schedule(client: Any, auth: Any, after: timedelta) -> dict[str, Any]:
    """A campaign to the loaded customers who spent over 10,000, due ``after`` from now."""
    at = (datetime.now(UTC) + after).isoformat()
    made: dict[str, Any] = await (
        await client.post(
            "/api/v1/campaigns",
            headers=auth,
            json={"name": "s", "message": "Hi", "rule": "spend > 10000", "scheduledAt": at},
        )
    ).json()
    assert made["status"] == "scheduled"
    return made


async def test_a_scheduled_campaign_waits_for_its_time(client: Any, auth: Any, delivering: Crmd):
    await load(client, auth)
    made = await schedule(client, auth, timedelta(hours=1))
    db, redis, stream = delivering.db, delivering.redis, delivering.streams.dispatch
    assert await start_due_campaigns(db, redis, stream, datetime.now(UTC)) == 0
    later = datetime.now(UTC) + timedelta(hours=2)
    assert await start_due_campaigns(db, redis, stream, later) == 1
    assert await start_due_campaigns(db, redis, stream, later) == 0
    await wait_status(client, auth, made["id"], "sent")


async def test_a_closed_receipt_window_completes_the_campaign(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    made = await start_campaign(client, auth, "w", "Hi", "spend > 10000 AND visits < 3")
    await wait_status(client, auth, made["id"], "sent")
    db = delivering.db
    assert await close_receipt_windows(db, 60, datetime.now(UTC)) == 0
    assert await close_receipt_windows(db, 60, datetime.now(UTC) + timedelta(minutes=2)) == 1
    done = await (await client.get(f"/api/v1/campaigns/{made['id']}", headers=auth)).json()
    assert done["status"] == "completed"
    assert placed(done["stats"]) == {
        "pending": 0,
        "sent": 0,
        "delivered": 0,
        "failed": 0,
        "unknown": 100,
        "cancelled": 0,
        "suppressed": 0,
    }


async def test_a_cancel_whose_sweep_was_lost_is_swept_when_its_window_closes(
    client: Any, auth: Any, ingesting: Any, system: Crmd
):
    """crmd died between cancelling and queueing the sweep: the clock sweeps it."""
    await load(client, auth)
    made = await start_campaign(client, auth, "x", "Hi", "spend > 10000 AND visits < 3")
    stream = system.streams.dispatch
    [(_, fields)] = await system.redis.xrange(stream)
    job = jobs.decode(fields[jobs.FIELD])
    await planning.plan(TenantStore(system.db, job.user), system.redis, stream, job)
    assert await system.db.send_chunks.count_documents({"done": False})  # planned, unsent
    await system.db.campaigns.update_one(
        {"_id": ObjectId(made["id"])}, {"$set": {"status": "cancelled"}}
    )
    later = datetime.now(UTC) + timedelta(minutes=2)
    assert await close_receipt_windows(system.db, 60, later) == 1
    assert await system.db.communication_log.count_documents({"status": "CANCELLED"}) == 100
    assert await system.db.send_chunks.count_documents({"done": False}) == 0
    body = await (await client.get(f"/api/v1/campaigns/{made['id']}", headers=auth)).json()
    assert (body["stats"]["pending"], body["stats"]["cancelled"]) == (0, 100)
