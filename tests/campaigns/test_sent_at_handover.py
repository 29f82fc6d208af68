"""A vendor whose acceptance is the last word (``Accepted(..., sent=True)``, as SMTP's
250): each message is SENT in the write that records its hand-over, looking exactly as
if its SENT receipt had been applied, and the campaign completes without a receipt or
the receipt window (no receipts actor and no clock run here)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
from bson import ObjectId

from crmd import hookimpl
from crmd.app import Crmd, open_crmd
from crmd.campaigns.handoff import Handoff
from crmd.config import Config
from crmd.messages import message_id, send_key
from crmd.plugins.context import PluginContext
from crmd.plugins.manager import get_plugin_manager
from crmd.plugins.vendor import (
    Accepted,
    CheckResult,
    Failed,
    OutgoingMessage,
    ReceiptEvent,
    SendResult,
)
from crmd.receipts.actor import recount_key
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import a_campaign, placed
from tests.campaigns.test_delivery_loop import load, start_campaign, wait_status

RULE = "spend > 10000 AND visits < 3"  # 100 of load()'s customers: p1, p5, p9...
AUDIENCE = 100


class LastWord:
    """Takes every message and will never say more of it; refuses each address in
    ``refuse`` once (a mailbox full: not a dead address)."""

    name = "last_word"

    def __init__(self) -> None:
        self.refuse: set[str] = set()

    def rate_limit(self) -> float:
        return 1000.0

    async def send(self, messages: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        results: list[SendResult] = []
        for message in messages:
            if message.recipient in self.refuse:
                self.refuse.discard(message.recipient)
                results.append(Failed(message.message_id, "452 4.2.2 mailbox full"))
            else:
                vendor_id = f"lw-{message.message_id}"
                results.append(Accepted(message.message_id, vendor_id, sent=True))
        return results

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> None:
        raise ValueError("the last_word vendor takes no receipts")

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        return []

    async def check(self) -> CheckResult:
        return CheckResult(True)

    async def close(self) -> None:
        return None


class LastWordPlugin:
    def __init__(self, vendor: LastWord) -> None:
        self.vendor = vendor

    @hookimpl
    def crmd_vendors(self, context: PluginContext) -> list[LastWord]:
        return [self.vendor]


@pytest.fixture
def vendor() -> LastWord:
    return LastWord()


@pytest.fixture
async def system(config: Config, mongo: Any, redis: Any, vendor: LastWord) -> AsyncIterator[Crmd]:
    """crmd with the last_word vendor alone (so the default), no actor running."""
    plugins = {"last_word": LastWordPlugin(vendor)}
    manager = get_plugin_manager(load_entrypoints=False, plugins=plugins)
    async with open_crmd(config, plugin_manager=manager) as crmd:
        yield crmd


@pytest.fixture
async def dispatching(client: Any, system: Crmd, ingesting: Any) -> Crmd:
    """Ingest and dispatch only: nothing that applies receipts or closes their window."""
    assert await system.start(("dispatch",)).wait_healthy(10)
    return system


async def logs_of(system: Crmd, campaign: str) -> dict[str, dict[str, Any]]:
    found = system.db.communication_log.find({"campaignId": campaign})
    return {doc["recipient"]: doc async for doc in found}


def assert_sent_at_handover(log: dict[str, Any]) -> None:
    """SENT with its rank and first-seen time, as ``receipts.apply`` leaves a SENT
    receipt's log, all of it in the write of the hand-over."""
    assert (log["status"], log["rank"]) == ("SENT", 1), log
    assert log["vendorMessageId"] == f"lw-{send_key(log)}"
    assert log["times"] == {"SENT": log["handedAt"]}
    assert log["updatedAt"] == log["handedAt"]


async def test_every_message_is_sent_at_handover_and_the_campaign_completes_at_once(
    client: Any, auth: Any, dispatching: Crmd
):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "Last word", "Hi {first_name}", RULE)
    done = await wait_status(client, auth, campaign["id"], "completed", timeout=60)
    logs = await logs_of(dispatching, campaign["id"])
    assert len(logs) == AUDIENCE
    for log in logs.values():
        assert_sent_at_handover(log)
        assert log["createdAt"] == log["handedAt"]  # inserted so: one write
    assert placed(done["stats"]) == {
        "pending": 0,
        "sent": AUDIENCE,
        "delivered": 0,
        "failed": 0,
        "unknown": 0,
        "cancelled": 0,
        "suppressed": 0,
    }
    assert done["deliveryRate"] == 1.0 and done["sentAt"] and done["completedAt"]
    assert await dispatching.db.receipt_events.count_documents({}) == 0
    # No receipt will ask for a recount while it sends: the dispatch actor asks instead.
    owner = await dispatching.db.campaigns.find_one({"_id": ObjectId(campaign["id"])})
    marks = await dispatching.redis.hkeys(recount_key(dispatching.streams.receipts))
    assert {m.decode() if isinstance(m, bytes) else m for m in marks} == {
        f"{owner['userId']}:{campaign['id']}"
    }


async def test_messages_sent_again_by_retry_failed_are_sent_at_handover_too(
    client: Any, auth: Any, dispatching: Crmd, vendor: LastWord
):
    vendor.refuse = {"p1@x.io", "p5@x.io"}
    await load(client, auth)
    campaign = await start_campaign(client, auth, "Last word", "Hi {first_name}", RULE)
    first = await wait_status(client, auth, campaign["id"], "completed", timeout=60)
    assert (first["stats"]["sent"], first["stats"]["failed"]) == (AUDIENCE - 2, 2)
    retried = await client.post(f"/api/v1/campaigns/{campaign['id']}/retry-failed", headers=auth)
    assert (await retried.json())["retried"] == 2
    second = await wait_status(client, auth, campaign["id"], "completed", timeout=60)
    logs = await logs_of(dispatching, campaign["id"])
    for again in ("p1@x.io", "p5@x.io"):  # updated, not inserted: a new round
        assert_sent_at_handover(logs[again])
        assert logs[again]["round"] == 1 and "reason" not in logs[again]
    assert (second["stats"]["sent"], second["stats"]["failed"]) == (AUDIENCE, 0)
    assert second["stats"]["pending"] == 0


async def test_a_handover_after_a_cancel_swept_the_log_is_still_sent(system: Crmd):
    """The vendor took it while a cancel marked it CANCELLED: SENT, as it was sent."""
    store = TenantStore(system.db, "u1")
    campaign = ObjectId()
    await store["campaigns"].insert_one(a_campaign(campaign, "sending"))
    log = message_id(str(campaign), "c1")
    entry = {"_id": log, "seq": 1, "customerId": "c1", "recipient": "a@x.io", "phone": ""}
    entry["message"] = "Hi"
    await store["communication_log"].insert_one(
        {**entry, "campaignId": str(campaign), "vendor": "v", "status": "CANCELLED", "rank": 0}
        | {"vendorMessageId": None, "round": 0}
    )
    handoff = Handoff(store, str(campaign), "v", fresh=True)
    handoff.accepted(entry, f"lw-{log}", 1, sent=True)
    await handoff.write()
    doc = await system.db.communication_log.find_one({"_id": log})
    assert doc is not None
    assert_sent_at_handover(doc)
