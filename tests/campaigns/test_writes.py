"""What a campaign costs the database, counted at the wire by crmd's own command counter
(documents in insert, update and delete statements, ``crmd_mongo_documents_total``): one
write per message handed to the vendor, and one more for its receipt."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crmd.app import Crmd
from tests.campaigns.test_delivery_loop import start_campaign, wait_status
from tests.counted import written
from tests.ingest.conftest import upload, wait_done

pytestmark = pytest.mark.slow  # counts the writes of large campaigns

AUDIENCE = 2_000
ROWS = "customer_external_id,name,email,spend\n" + "".join(
    f"W{i},Person {i},w{i}@x.io,{i}\n" for i in range(AUDIENCE)
)
QUIET = {"failure_rate": 0.0, "delay_min": 0.01, "delay_max": 0.05, "seed": 3}


async def campaign_written(client: Any, auth: Any, system: Crmd, until: str) -> float:
    """Documents written per recipient from creating a campaign to every customer until
    its status is ``until``."""
    answer = await (await upload(client, auth, "customers", ROWS)).json()
    assert (await wait_done(client, auth, answer["uploadId"]))["rows"]["persisted"] == AUDIENCE
    before = written(system)
    campaign = await start_campaign(client, auth, "Everyone", "Hi {name}", "spend >= 0")
    body = await wait_status(client, auth, campaign["id"], until, timeout=120)
    assert body["audienceSize"] == AUDIENCE
    while True:  # and whatever follows at once (the last recount)
        now = written(system)
        await asyncio.sleep(0.5)
        if written(system) == now:
            return (now - before) / AUDIENCE


@pytest.mark.parametrize("vendor_settings", [{**QUIET, "receipts": False}])
async def test_a_message_handed_over_is_one_write(client: Any, auth: Any, delivering: Crmd):
    per_message = await campaign_written(client, auth, delivering, "sent")
    logs = delivering.db.communication_log
    assert await logs.count_documents({"vendorMessageId": {"$ne": None}}) == AUDIENCE
    assert per_message <= 1.05, per_message


@pytest.mark.parametrize("vendor_settings", [QUIET])
async def test_a_message_and_its_receipt_are_two_writes(client: Any, auth: Any, delivering: Crmd):
    per_message = await campaign_written(client, auth, delivering, "completed")
    assert await delivering.db.communication_log.count_documents({"status": "SENT"}) == AUDIENCE
    assert await delivering.db.receipt_events.count_documents({}) == 0
    assert per_message <= 2.05, per_message
