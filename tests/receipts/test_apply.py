"""Applying receipt batches directly: one update per receipt when the log allows it,
the exact two-step form when a batch races itself, and recounts that are never lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

import crmd.receipts.actor as actor
from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts.apply import apply_receipts
from crmd.receipts.batch import ReceiptBatch
from crmd.runtime.context import Runtime
from crmd.store.tenant import TenantStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USER = "u1"


async def campaign_with_logs(runtime: Runtime, n: int) -> tuple[str, list[str]]:
    store = TenantStore(runtime.db, USER)
    campaign = ObjectId()
    await store["campaigns"].insert_one({"_id": campaign, "status": "sent", "stats": {}})
    ids = [f"{i:024x}" for i in range(n)]
    await store["communication_log"].insert_many([
        {"_id": i, "campaignId": str(campaign), "customerId": f"c{i}", "vendor": "v",
         "status": "PENDING", "rank": 0, "vendorMessageId": f"v{i}"} for i in ids])  # fmt: skip
    return str(campaign), ids


def event(log: str, status: str, name: str, minutes: int = 0) -> ReceiptEvent:
    return ReceiptEvent(status, T0 + timedelta(minutes=minutes), name, message_id=log)


async def stored(runtime: Runtime, log: str) -> dict[str, Any]:
    doc = await runtime.db.communication_log.find_one({"_id": log})
    assert doc is not None
    return doc


async def test_a_batch_that_races_itself_ends_as_any_order_would(runtime: Runtime):
    campaign, [a, b] = await campaign_with_logs(runtime, 2)
    events = [event(a, "CLICKED", "e1", 3), event(a, "SENT", "e2", 1),
              event(a, "DELIVERED", "e3", 2), event(a, "SENT", "e4", 5),
              event(b, "SENT", "e5", 1)]  # fmt: skip
    touched = await apply_receipts(runtime.db, runtime.metrics, [ReceiptBatch("v", events)])
    assert touched == {(USER, campaign)}
    first = await stored(runtime, a)
    assert (first["status"], first["rank"]) == ("CLICKED", 4)
    assert first["times"] == {"SENT": T0 + timedelta(minutes=1),
                              "DELIVERED": T0 + timedelta(minutes=2),
                              "CLICKED": T0 + timedelta(minutes=3)}  # fmt: skip
    assert (await stored(runtime, b))["status"] == "SENT"
    doc = await runtime.db.campaigns.find_one({"_id": ObjectId(campaign)})
    assert doc["stats"]["sent"] == 1 and doc["stats"]["delivered"] == 1


async def test_later_batches_only_move_first_seen_times_back(runtime: Runtime):
    campaign, [a] = await campaign_with_logs(runtime, 1)
    await apply_receipts(runtime.db, runtime.metrics,
                         [ReceiptBatch("v", [event(a, "DELIVERED", "e1", 10)])])  # fmt: skip
    await apply_receipts(runtime.db, runtime.metrics, [ReceiptBatch("v", [
        event(a, "DELIVERED", "e2", 20), event(a, "SENT", "e3", 4)])])  # fmt: skip
    assert (await stored(runtime, a))["times"]["DELIVERED"] == T0 + timedelta(minutes=10)
    touched = await apply_receipts(runtime.db, runtime.metrics, [
        ReceiptBatch("v", [event(a, "DELIVERED", "e4", 5)])], recount=False)  # fmt: skip
    log = await stored(runtime, a)
    assert log["status"] == "DELIVERED"
    assert log["times"] == {"DELIVERED": T0 + timedelta(minutes=5),
                            "SENT": T0 + timedelta(minutes=4)}  # fmt: skip
    assert touched == {(USER, campaign)}
    doc = await runtime.db.campaigns.find_one({"_id": ObjectId(campaign)})
    assert doc["stats"]["delivered"] == 1  # recounted by the second batch, not the third


async def test_a_campaign_marked_again_during_its_recount_stays_marked(
    runtime: Runtime, monkeypatch: Any
):
    campaign, _ = await campaign_with_logs(runtime, 1)
    key = actor.recount_key(runtime.streams.receipts)
    await actor.mark(runtime.redis, key, {(USER, campaign), (USER, "other")})
    recount = actor.recount_stats
    counted: list[set[tuple[str, str]]] = []

    async def marked_meanwhile(db: Any, pairs: set[tuple[str, str]]) -> None:
        counted.append(pairs)
        await actor.mark(runtime.redis, key, {(USER, campaign)})  # another batch lands
        await recount(db, {p for p in pairs if p[1] == campaign})

    monkeypatch.setattr(actor, "recount_stats", marked_meanwhile)
    assert await actor.recount_marked(runtime, key) == 2
    assert counted == [{(USER, campaign), (USER, "other")}]
    assert await runtime.redis.hkeys(key) == [f"{USER}:{campaign}".encode()]
    monkeypatch.setattr(actor, "recount_stats", recount)
    assert await actor.recount_marked(runtime, key) == 1
    assert await runtime.redis.hlen(key) == 0
