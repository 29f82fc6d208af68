"""Complaints and soft bounces, applied directly: a complaint suppresses at once, soft
bounces count once per message and only within the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from crmd.app import Crmd
from crmd.messages import message_id
from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts.apply import apply_receipts
from crmd.receipts.batch import ReceiptBatch
from crmd.receipts.soft import SoftBounceRule
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import a_campaign

USER = "u1"


async def messages_to(system: Crmd, email: str, n: int) -> list[str]:
    """One message to ``email`` in each of ``n`` sent campaigns."""
    store = TenantStore(system.db, USER)
    ids = []
    for _ in range(n):
        campaign = ObjectId()
        await store["campaigns"].insert_one(a_campaign(campaign, "sent"))
        ids.append(message_id(str(campaign), "c1"))
        await store["communication_log"].insert_one(
            {
                "_id": ids[-1],
                "campaignId": str(campaign),
                "customerId": "c1",
                "recipient": email,
                "vendor": "smtp",
                "status": "SENT",
                "rank": 1,
            }
        )
    return ids


def soft(log: str, name: str, at: datetime) -> ReceiptEvent:
    return ReceiptEvent("SOFT_BOUNCED", at, name, message_id=log, reason="4.2.2 mailbox full")


async def listed(system: Crmd) -> dict[str, dict[str, str]]:
    return {d["email"]: d async for d in system.db.suppressions.find({"userId": USER})}


async def test_a_soft_bounce_redelivered_counts_once(system: Crmd):
    logs = await messages_to(system, "a@x.io", 3)
    now = datetime.now(UTC)
    twice = [soft(logs[0], "e1", now), soft(logs[0], "e2", now), soft(logs[1], "e3", now)]
    rule = SoftBounceRule(limit=3, window_days=7)
    for _ in range(2):
        await apply_receipts(
            system.db, system.metrics, [ReceiptBatch("bounces", twice, ["smtp"])], soft=rule
        )
    assert await listed(system) == {}
    assert await system.db.soft_bounces.count_documents({"userId": USER}) == 2
    log = await system.db.communication_log.find_one({"_id": logs[0]})
    assert log is not None and log["status"] == "SENT" and "SOFT_BOUNCED" in log["times"]
    third = [soft(logs[2], "e4", now)]
    await apply_receipts(
        system.db, system.metrics, [ReceiptBatch("bounces", third, ["smtp"])], soft=rule
    )
    entry = (await listed(system))["a@x.io"]
    assert (entry["source"], entry["reason"]) == ("bounce", "3 soft bounces within 7 days")


async def test_soft_bounces_older_than_the_window_do_not_count(system: Crmd):
    logs = await messages_to(system, "b@x.io", 3)
    now = datetime.now(UTC)
    events = [
        soft(logs[0], "e1", now - timedelta(days=3)),
        soft(logs[1], "e2", now - timedelta(days=1)),
        soft(logs[2], "e3", now),
    ]
    rule = SoftBounceRule(limit=3, window_days=2)
    await apply_receipts(
        system.db, system.metrics, [ReceiptBatch("bounces", events, ["smtp"])], soft=rule
    )
    assert await listed(system) == {}
    await apply_receipts(
        system.db,
        system.metrics,
        [ReceiptBatch("bounces", events, ["smtp"])],
        soft=SoftBounceRule(2, 2),
    )
    assert (await listed(system))["b@x.io"]["reason"] == "2 soft bounces within 2 days"


async def test_a_complaint_suppresses_at_once_and_outranks_every_status(system: Crmd):
    [log] = await messages_to(system, "c@x.io", 1)
    events = [
        ReceiptEvent("COMPLAINED", datetime.now(UTC), "e1", message_id=log),
        ReceiptEvent("CLICKED", datetime.now(UTC), "e2", message_id=log),
    ]
    await apply_receipts(system.db, system.metrics, [ReceiptBatch("smtp", events)])
    entry = (await listed(system))["c@x.io"]
    assert (entry["source"], entry["reason"]) == ("complaint", "complaint")
    stored = await system.db.communication_log.find_one({"_id": log})
    assert stored is not None and stored["status"] == "COMPLAINED"
