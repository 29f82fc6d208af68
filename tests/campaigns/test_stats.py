"""Stats recounts that overlap: each takes a ticket before it counts, and a recount
stores its count only if none with a later ticket has, so the stats never go back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns import stats
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import a_campaign


async def sent_campaign(system: Crmd) -> tuple[TenantStore, str]:
    """A sent campaign of three recipients, all handed over, none answered yet."""
    store = TenantStore(system.db, "u1")
    campaign = ObjectId()
    now = datetime.now(UTC)
    await store["campaigns"].insert_one(
        a_campaign(campaign, "sent", lastSeq=3, audienceSize=3, plannedAt=now)
    )
    await store["communication_log"].insert_many(
        [{"_id": f"m{i}", "campaignId": str(campaign), "status": "SENT"} for i in range(3)]
    )
    return store, str(campaign)


async def receipt(store: TenantStore, message: str, status: str) -> None:
    await store["communication_log"].update_one({"_id": message}, {"$set": {"status": status}})


async def stored(store: TenantStore, campaign: str) -> dict[str, Any]:
    doc = await store["campaigns"].find_one({"_id": ObjectId(campaign)})
    assert doc is not None
    return doc


async def test_an_older_recount_stored_last_does_not_undo_a_newer_one(system: Crmd):
    store, campaign = await sent_campaign(system)
    older = await stats.take_ticket(store, campaign)
    _, older_count = await stats.recount(store, campaign)  # before the receipt
    await receipt(store, "m0", "DELIVERED")
    newer = await stats.take_ticket(store, campaign)
    _, newer_count = await stats.recount(store, campaign)
    assert newer > older

    assert await stats.store_count(store, campaign, newer, newer_count)
    assert not await stats.store_count(store, campaign, older, older_count)
    doc = await stored(store, campaign)
    assert (doc["stats"]["sent"], doc["stats"]["delivered"]) == (2, 1)
    assert doc["statsVersion"] == newer


async def test_recounts_store_in_ticket_order_and_still_complete_the_campaign(system: Crmd):
    store, campaign = await sent_campaign(system)
    first = await stats.refresh(store, campaign)  # no version stored yet: stored
    assert (await stored(store, campaign))["stats"] == first
    overtaken = await stats.take_ticket(store, campaign)
    for message in ("m0", "m1", "m2"):
        await receipt(store, message, "DELIVERED")
    counted = await stats.refresh(store, campaign)  # a later ticket: stored, and completes
    _, stale = await stats.recount(store, campaign)
    assert not await stats.store_count(store, campaign, overtaken, stale)
    doc = await stored(store, campaign)
    assert doc["stats"] == counted and counted["delivered"] == 3
    assert doc["status"] == "completed"
    assert doc["statsVersion"] == doc["statsTicket"] == overtaken + 1
