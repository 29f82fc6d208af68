"""Recording a handover on a log that another consumer (or a cancel and a receipt) wrote
first: only a rank-0 log without the vendor's id takes it as a status; a log a receipt
raised first keeps what the receipt said and gains the vendor's id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns.handoff import Handoff
from crmd.messages import message_id
from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts.apply import apply_receipts
from crmd.receipts.batch import ReceiptBatch
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import a_campaign

USER = "u1"


async def a_log(system: Crmd, status: str, rank: int, **more: object) -> tuple[str, dict]:
    store = TenantStore(system.db, USER)
    campaign = ObjectId()
    await store["campaigns"].insert_one(a_campaign(campaign, "sending"))
    log = message_id(str(campaign), "c1")
    entry = {"_id": log, "seq": 1, "customerId": "c1", "recipient": "a@x.io", "phone": ""}
    entry["message"] = "Hi"
    await store["communication_log"].insert_one(
        {**entry, "campaignId": str(campaign), "vendor": "v", "status": status, "rank": rank}
        | {"vendorMessageId": None, "round": 0, **more}
    )
    return str(campaign), entry


async def hand_over(system: Crmd, campaign: str, entry: dict, fresh: bool) -> dict:
    handoff = Handoff(TenantStore(system.db, USER), campaign, "v", fresh=fresh)
    handoff.accepted(entry, "vendor-1", 1)
    await handoff.write()
    doc = await system.db.communication_log.find_one({"_id": entry["_id"]})
    assert doc is not None
    return doc


@pytest.mark.parametrize(
    ("status", "rank", "more", "after", "vendor_id"),
    [
        ("FAILED", 5, {"gaveUp": True}, "FAILED", None),  # another consumer gave up on it
        ("DELIVERED", 2, {}, "DELIVERED", "vendor-1"),  # cancelled, then its receipt came
        ("CANCELLED", 0, {}, "PENDING", "vendor-1"),  # cancelled while with the vendor
        ("SUPPRESSED", 9, {}, "SUPPRESSED", None),
    ],
)
@pytest.mark.parametrize("fresh", [True, False])
async def test_a_handover_never_takes_back_what_a_log_knows(
    system: Crmd, status: str, rank: int, more: dict, after: str, vendor_id: str | None, fresh: bool
):
    campaign, entry = await a_log(system, status, rank, **more)
    doc = await hand_over(system, campaign, entry, fresh)
    assert (doc["status"], doc["rank"]) == (after, rank)
    assert doc["vendorMessageId"] == vendor_id


@pytest.mark.parametrize(
    "round_", [0, 1], ids=["first send", "a round of retry-failed (gaveUp: false)"]
)
async def test_a_receipt_that_comes_before_the_handover_is_written_keeps_both(
    system: Crmd, round_: int
):
    """A vendor that echoes crmd's id can post the receipt while the batch is still being
    recorded: the log says DELIVERED, and has the vendor's id for later receipts."""
    retried = {"round": round_, "gaveUp": False} if round_ else {}
    campaign, entry = await a_log(system, "PENDING", 0, **retried)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    sent_as = f"{entry['_id']}:r{round_}" if round_ else entry["_id"]
    early = ReceiptEvent("DELIVERED", at, "e1", message_id=sent_as)
    await apply_receipts(system.db, system.metrics, [ReceiptBatch("v", [early])])
    doc = await hand_over(system, campaign, {**entry, "round": round_}, fresh=False)
    assert (doc["status"], doc["vendorMessageId"], doc["attempts"]) == ("DELIVERED", "vendor-1", 1)
    assert doc["handedAt"] is not None
    # A later receipt that names only the vendor's id finds it.
    later = ReceiptEvent("CLICKED", at, "e2", vendor_message_id="vendor-1")
    await apply_receipts(system.db, system.metrics, [ReceiptBatch("v", [later])])
    found = await system.db.communication_log.find_one({"_id": entry["_id"]})
    assert found is not None and found["status"] == "CLICKED"
