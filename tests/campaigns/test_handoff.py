"""Recording a handover on a log that another consumer (or a cancel and a receipt) wrote
first: only a rank-0 log without the vendor's id takes it."""

from __future__ import annotations

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns.dispatch import Handoff
from crmd.messages import message_id
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import a_campaign

USER = "u1"


@pytest.mark.parametrize(
    ("status", "rank", "after"),
    [
        ("FAILED", 5, "FAILED"),  # another consumer gave up on it
        ("DELIVERED", 2, "DELIVERED"),  # cancelled, then its receipt came
        ("CANCELLED", 0, "PENDING"),  # cancelled while the batch was with the vendor
    ],
)
async def test_a_handover_never_takes_back_what_a_log_knows(
    system: Crmd, status: str, rank: int, after: str
):
    store = TenantStore(system.db, USER)
    campaign = ObjectId()
    await store["campaigns"].insert_one(a_campaign(campaign, "sending"))
    log = message_id(str(campaign), "c1")
    entry = {"_id": log, "seq": 1, "customerId": "c1", "recipient": "a@x.io", "phone": ""}
    entry["message"] = "Hi"
    await store["communication_log"].insert_one(
        {**entry, "campaignId": str(campaign), "vendor": "v", "status": status, "rank": rank}
        | {"vendorMessageId": None, "round": 0}
    )
    handoff = Handoff(store, str(campaign), "v", fresh=True)
    handoff.accepted(entry, "vendor-1", 1)
    await handoff.write()
    doc = await system.db.communication_log.find_one({"_id": log})
    assert doc is not None and (doc["status"], doc["rank"]) == (after, rank)
    assert doc["vendorMessageId"] == ("vendor-1" if after == "PENDING" else None)
