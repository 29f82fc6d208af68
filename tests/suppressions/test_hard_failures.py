"""Addresses that will never work are suppressed, with the vendor's reason: a send the
vendor refuses as a dead mailbox, a BOUNCED receipt, a FAILED receipt saying "no such
user". Other failures (a full mailbox, a policy refusal) are not."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from crmd.app import Crmd
from tests.campaigns.test_delivery_loop import wait_status
from tests.receipts.test_receipts_api import post, receipt, settled
from tests.suppressions.conftest import SECRET, Gateway, load_people, suppressed
from tests.suppressions.test_unsubscribe import ONE_CLICK, campaign

DEAD = "550 5.1.1 <p1@example.com>: Recipient address rejected: User unknown"
FULL = "552 5.2.2 <p4@example.com>: mailbox full"


async def test_dead_addresses_are_suppressed_and_skipped_next_time(
    client: Any, auth: Any, delivering: Crmd, gateway: Gateway
):
    await load_people(client, auth)
    gateway.refuse = {"p1@example.com": DEAD, "p4@example.com": FULL}
    first = await campaign(client, auth, "Spring")
    assert first["stats"]["failed"] == 2 and first["stats"]["sent"] == 4
    listed = await suppressed(client, auth)
    assert list(listed) == ["p1@example.com"]  # the full mailbox may work next time
    assert listed["p1@example.com"]["source"] == "failure"
    assert listed["p1@example.com"]["reason"] == DEAD
    assert listed["p1@example.com"]["campaignId"] == first["id"]

    logs = {
        d["recipient"]: d
        async for d in delivering.db.communication_log.find({"campaignId": first["id"]})
    }
    receipts = [
        receipt(logs["p3@example.com"], "BOUNCED", "evt-bounce") | {"reason": "bounced"},
        receipt(logs["p5@example.com"], "FAILED", "evt-soft") | {"reason": "421 try later"},
        receipt(logs["p6@example.com"], "FAILED", "evt-dead") | {"reason": "no such user"},
    ]
    assert (await post(client, delivering, receipts, secret=SECRET)).status == 202
    await settled(delivering)
    listed = await suppressed(client, auth)
    assert sorted(listed) == ["p1@example.com", "p3@example.com", "p6@example.com"]
    assert (listed["p3@example.com"]["source"], listed["p3@example.com"]["reason"]) == (
        "bounce",
        "bounced",
    )
    assert listed["p6@example.com"]["source"] == "failure"

    gateway.sent.clear()
    gateway.refuse = {}
    second = await campaign(client, auth, "Summer")
    assert second["stats"]["suppressed"] == 3 and second["stats"]["sent"] == 3
    assert sorted(m.recipient for m in gateway.sent) == [
        "p2@example.com",
        "p4@example.com",
        "p5@example.com",
    ]


async def test_a_retry_sends_nothing_to_addresses_suppressed_since(
    client: Any, auth: Any, delivering: Crmd, gateway: Gateway
):
    """The list is read again at hand-over: a retry of failed messages (and the rest of
    a campaign still sending) skips whoever was suppressed after it was planned."""
    await load_people(client, auth)
    gateway.refuse = {"p1@example.com": DEAD, "p4@example.com": FULL, "p5@example.com": FULL}
    first = await campaign(client, auth, "Spring")
    assert first["stats"]["failed"] == 3
    added = await client.post(
        "/api/v1/suppressions", json={"email": "p4@example.com", "reason": "asked"}, headers=auth
    )
    assert added.status == 201
    [failed] = gateway.to("p5@example.com")  # its owner follows the failed message's link
    followed = await client.post(urlsplit(failed.unsubscribe_url).path, data=ONE_CLICK)
    assert followed.status == 200
    gateway.refuse, gateway.sent = {}, []
    retried = await client.post(f"/api/v1/campaigns/{first['id']}/retry-failed", headers=auth)
    assert retried.status == 200, await retried.text()
    done = await wait_status(client, auth, first["id"], "completed")
    assert gateway.sent == []  # p1 suppressed by its failure, p4 by the operator, p5 itself
    assert done["stats"]["suppressed"] == 3 and done["stats"]["failed"] == 0
    held = {
        d["recipient"]: d["reason"]
        async for d in delivering.db.communication_log.find(
            {"campaignId": first["id"], "status": "SUPPRESSED"}
        )
    }
    assert held == {
        "p1@example.com": f"on the suppression list: {DEAD}",
        "p4@example.com": "on the suppression list: asked",
        "p5@example.com": "on the suppression list: followed the unsubscribe link in a message",
    }


async def test_a_receipt_batch_failed_alike_suppresses_nobody(
    client: Any, auth: Any, delivering: Crmd, gateway: Gateway
):
    """A relay that takes the shop's domain for its own refuses everyone as unknown: four
    FAILED receipts in one batch, alike but for the address, suppress none of them."""
    await load_people(client, auth)
    first = await campaign(client, auth, "Spring")
    logs = {
        d["recipient"]: d
        async for d in delivering.db.communication_log.find({"campaignId": first["id"]})
    }
    unknown = "550 5.1.1 <{}>: Recipient address rejected: User unknown in local recipient table"
    receipts = [
        receipt(logs[f"p{i}@example.com"], "FAILED", f"evt-{i}")
        | {"reason": unknown.format(f"p{i}@example.com")}
        for i in range(1, 5)
    ]
    assert (await post(client, delivering, receipts, secret=SECRET)).status == 202
    await settled(delivering)
    assert await suppressed(client, auth) == {}
    one = receipt(logs["p6@example.com"], "FAILED", "evt-6") | {"reason": unknown.format("p6")}
    assert (await post(client, delivering, [one], secret=SECRET)).status == 202
    await settled(delivering)
    assert list(await suppressed(client, auth)) == ["p6@example.com"]
