"""Applying receipt batches directly: one update per receipt when the log allows it,
the exact two-step form when a batch races itself, and recounts that are never lost."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from bson import ObjectId

import crmd.receipts.actor as actor
from crmd.app import Crmd
from crmd.campaigns.stats import mark_for_recount
from crmd.messages import RANK, legacy_message_id, message_id
from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts import batch
from crmd.receipts.apply import apply_receipts
from crmd.receipts.batch import ReceiptBatch
from crmd.receipts.status import fold
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import a_campaign
from tests.counted import commands

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USER = "u1"


async def campaign_with_logs(system: Crmd, n: int, named: bool = True) -> tuple[str, list[str]]:
    """A sent campaign's logs, with ids that name the campaign (``named``) or the
    legacy ids of campaigns from before they did."""
    store = TenantStore(system.db, USER)
    campaign = ObjectId()
    await store["campaigns"].insert_one(a_campaign(campaign, "sent"))
    make = message_id if named else legacy_message_id
    ids = [make(str(campaign), f"c{i}") for i in range(n)]
    await store["communication_log"].insert_many(
        [
            {
                "_id": i,
                "campaignId": str(campaign),
                "customerId": f"c{i}",
                "vendor": "v",
                "status": "PENDING",
                "rank": 0,
                "vendorMessageId": f"v{i}",
            }
            for i in ids
        ]
    )
    return str(campaign), ids


def event(log: str, status: str, name: str, minutes: int = 0) -> ReceiptEvent:
    return ReceiptEvent(status, T0 + timedelta(minutes=minutes), name, message_id=log)


async def stored(system: Crmd, log: str) -> dict[str, Any]:
    doc = await system.db.communication_log.find_one({"_id": log})
    assert doc is not None
    return doc


@pytest.mark.parametrize("named", [True, False])
async def test_a_batch_that_races_itself_ends_as_any_order_would(system: Crmd, named: bool):
    campaign, [a, b] = await campaign_with_logs(system, 2, named)
    events = [
        event(a, "CLICKED", "e1", 3),
        event(a, "SENT", "e2", 1),
        event(a, "DELIVERED", "e3", 2),
        event(a, "SENT", "e4", 5),
        event(b, "SENT", "e5", 1),
    ]
    touched = await apply_receipts(system.db, system.metrics, [ReceiptBatch("v", events)])
    assert touched == {(USER, campaign)}
    first = await stored(system, a)
    assert (first["status"], first["rank"]) == ("CLICKED", 4)
    assert first["times"] == {
        "SENT": T0 + timedelta(minutes=1),
        "DELIVERED": T0 + timedelta(minutes=2),
        "CLICKED": T0 + timedelta(minutes=3),
    }
    assert (await stored(system, b))["status"] == "SENT"
    doc = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
    assert doc["stats"]["sent"] == 1 and doc["stats"]["delivered"] == 1


@pytest.mark.parametrize("named", [True, False])
async def test_later_batches_only_move_first_seen_times_back(system: Crmd, named: bool):
    campaign, [a] = await campaign_with_logs(system, 1, named)
    await apply_receipts(
        system.db, system.metrics, [ReceiptBatch("v", [event(a, "DELIVERED", "e1", 10)])]
    )
    await apply_receipts(
        system.db,
        system.metrics,
        [ReceiptBatch("v", [event(a, "DELIVERED", "e2", 20), event(a, "SENT", "e3", 4)])],
    )
    assert (await stored(system, a))["times"]["DELIVERED"] == T0 + timedelta(minutes=10)
    touched = await apply_receipts(
        system.db,
        system.metrics,
        [ReceiptBatch("v", [event(a, "DELIVERED", "e4", 5)])],
        recount=False,
    )
    log = await stored(system, a)
    assert log["status"] == "DELIVERED"
    assert log["times"] == {
        "DELIVERED": T0 + timedelta(minutes=5),
        "SENT": T0 + timedelta(minutes=4),
    }
    assert touched == {(USER, campaign)}
    doc = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
    assert doc["stats"]["delivered"] == 1  # recounted by the second batch, not the third


async def test_receipts_naming_crmds_ids_cost_one_update_each_and_no_read(system: Crmd):
    campaign, ids = await campaign_with_logs(system, 50)
    before = commands(system)
    events = [event(log, "DELIVERED", f"e{n}", n) for n, log in enumerate(ids)]
    touched = await apply_receipts(
        system.db, system.metrics, [ReceiptBatch("v", events)], recount=False
    )
    after = commands(system)
    spent = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    # One update command of 50 statements; one read, of the campaign's owner.
    assert spent == {"update": 1, "find": 1}
    assert touched == {(USER, campaign)}
    assert await system.db.communication_log.count_documents({"status": "DELIVERED"}) == 50
    assert await system.db.receipt_events.count_documents({}) == 0


async def test_a_receipt_for_another_vendors_message_changes_nothing(system: Crmd):
    _, [a] = await campaign_with_logs(system, 1)
    touched = await apply_receipts(
        system.db, system.metrics, [ReceiptBatch("other", [event(a, "DELIVERED", "e1")])]
    )
    assert touched == set()
    assert (await stored(system, a))["status"] == "PENDING"
    unknown = await system.db.receipt_events.find_one({"_id": "other:e1"})
    assert unknown is not None and unknown["unknown"] is True


@pytest.mark.parametrize("named", [True, False])
async def test_a_reporter_names_only_the_messages_of_the_vendors_it_reports_for(
    system: Crmd, named: bool
):
    """A provider's webhook (or the bounces listener) reports on mail another vendor
    sent: its events land on that vendor's logs, and on no other's, by either way."""
    _, [a, b] = await campaign_with_logs(system, 2, named)
    reports = ReceiptBatch("ses", [event(a, "BOUNCED", "e1")], reports_for=["v"])
    await apply_receipts(system.db, system.metrics, [reports])
    assert (await stored(system, a))["status"] == "BOUNCED"
    elsewhere = ReceiptBatch("ses", [event(b, "DELIVERED", "e2")], reports_for=["w"])
    await apply_receipts(system.db, system.metrics, [elsewhere])
    assert (await stored(system, b))["status"] == "PENDING"
    unknown = await system.db.receipt_events.find_one({"_id": "ses:e2"})
    assert unknown is not None and unknown["reportsFor"] == ["w"]


async def test_a_campaign_marked_again_during_its_recount_stays_marked(
    system: Crmd, monkeypatch: Any
):
    campaign, _ = await campaign_with_logs(system, 1)
    key = actor.recount_key(system.streams.receipts)
    await mark_for_recount(system.redis, key, {(USER, campaign), (USER, "other")})
    recount = actor.recount_stats
    counted: list[set[tuple[str, str]]] = []

    async def marked_meanwhile(db: Any, pairs: set[tuple[str, str]]) -> None:
        counted.append(pairs)
        await mark_for_recount(system.redis, key, {(USER, campaign)})  # another batch lands
        await recount(db, {p for p in pairs if p[1] == campaign})

    monkeypatch.setattr(actor, "recount_stats", marked_meanwhile)
    assert await actor.recount_marked(system.db, system.redis, key) == 2
    assert counted == [{(USER, campaign), (USER, "other")}]
    assert await system.redis.hkeys(key) == [f"{USER}:{campaign}".encode()]
    monkeypatch.setattr(actor, "recount_stats", recount)
    assert await actor.recount_marked(system.db, system.redis, key) == 1
    assert await system.redis.hlen(key) == 0


async def test_the_database_ends_where_the_pure_precedence_does_in_every_order(system: Crmd):
    """``status.fold`` is the reference; the production path (``apply_receipts``, which
    writes ``status.as_updates``) must agree with it for every order of a receipt set,
    receipt by receipt as separate callbacks would bring them."""
    receipts = [("FAILED", 1), ("SENT", 2), ("DELIVERED", 3), ("SENT", 0), ("CLICKED", 4)]
    orders = list(itertools.permutations(range(len(receipts))))
    _, logs = await campaign_with_logs(system, len(orders))
    for step in range(len(receipts)):  # the step-th receipt of every order, in one go
        batch = [
            event(log, receipts[order[step]][0], f"{log}-{step}", receipts[order[step]][1])
            for log, order in zip(logs, orders, strict=True)
        ]
        await apply_receipts(system.db, system.metrics, [ReceiptBatch("v", batch)], recount=False)
    for log, order in zip(logs, orders, strict=True):
        expected = fold((s, T0 + timedelta(minutes=m)) for s, m in (receipts[i] for i in order))
        doc = await stored(system, log)
        assert (doc["status"], doc["rank"]) == (expected.status, RANK[expected.status]), order
        seen = {k: v.replace(tzinfo=UTC) for k, v in doc["times"].items()}
        assert seen == expected.first_seen, order


async def test_a_read_that_takes_longer_than_the_deadline_still_gets_through(
    system: Crmd, monkeypatch: Any
):
    """Callbacks of up to 10,000 receipts, a hundred to a read: more than one handler's
    deadline. What is applied is acked group by group, so each try gets further."""
    campaign, ids = await campaign_with_logs(system, 40)
    stream = system.streams.receipts
    for start in range(0, 40, 10):  # four callbacks of ten
        events = [event(log, "SENT", f"e-{log}") for log in ids[start : start + 10]]
        await system.redis.xadd(stream, {batch.FIELD: batch.encode(ReceiptBatch("v", events))})
    apply = actor.apply_receipts

    async def slow(*args: Any, **kwargs: Any) -> set[tuple[str, str]]:
        await asyncio.sleep(0.2)  # four groups: 0.8 s a read, the deadline 0.5 s
        return await apply(*args, **kwargs)

    monkeypatch.setattr(actor, "apply_receipts", slow)
    monkeypatch.setattr(actor, "APPLY_EVENTS", 10)
    settings = msgspec.structs.replace(
        system.config.streams, handler_timeout_ms=500, claim_idle_ms=600
    )
    receipts = actor.receipts_actor(system.db, system.redis, stream, settings, system.metrics)
    running = asyncio.create_task(receipts.run())
    try:
        async with asyncio.timeout(20):
            while await system.db.communication_log.count_documents({"status": "SENT"}) < 40:
                await asyncio.sleep(0.1)
            while (await system.redis.xpending(stream, "crmd"))["pending"]:
                await asyncio.sleep(0.1)
            # recounted once caught up (a RECOUNT_GAP after the last, at the latest)
            while (await stats_of(system, campaign)).get("sent") != 40:
                await asyncio.sleep(0.1)
    finally:
        receipts.stopping.set()
        await running
    assert (await stats_of(system, campaign))["sent"] == 40


async def stats_of(system: Crmd, campaign: str) -> dict[str, int]:
    doc = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
    return doc.get("stats", {})


@pytest.mark.parametrize("reason", ["$userId", "$$ROOT", "$$NOPE", "$campaignId.x"])
async def test_a_reason_is_stored_as_the_vendor_wrote_it(system: Crmd, reason: str):
    """A receipt's text goes into an update pipeline as a value, never as a field path
    or a variable (which would copy another field in, or fail the whole batch)."""
    _, [a, b] = await campaign_with_logs(system, 2)
    events = [
        ReceiptEvent("FAILED", T0, "e1", message_id=a, reason=reason),
        ReceiptEvent("SENT", T0, "e2", message_id=b),
    ]
    await apply_receipts(system.db, system.metrics, [ReceiptBatch("v", events)], recount=False)
    failed = await stored(system, a)
    assert (failed["status"], failed["reason"]) == ("FAILED", reason)
    assert (await stored(system, b))["status"] == "SENT"
