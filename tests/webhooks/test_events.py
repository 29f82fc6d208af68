"""Where crmd emits: the receipts actor's applied outcomes (``message.outcome``, to the
message's own tenant only, one per message and outcome), an unsubscribe link followed
(``customer.unsubscribed``), an upload done (``import.done``)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from crmd.app import Crmd
from crmd.messages import message_id
from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts import batch
from crmd.receipts.batch import ReceiptBatch
from crmd.store.tenant import TenantStore
from crmd.suppressions.links import UnsubscribeLinks
from crmd.webhooks.emit import emit
from tests.campaigns.conftest import a_campaign
from tests.ingest.conftest import upload, wait_done
from tests.webhooks.conftest import Endpoint, deliver, sign_in, subscribe, user_id

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def sent_campaign(system: Crmd, user: str, customers: list[str]) -> tuple[str, list[str]]:
    """A sent campaign's logs, written straight into the store."""
    store = TenantStore(system.db, user)
    campaign = ObjectId()
    await store["campaigns"].insert_one(a_campaign(campaign, "sent"))
    ids = [message_id(str(campaign), c) for c in customers]
    await store["communication_log"].insert_many(
        [
            {
                "_id": log,
                "campaignId": str(campaign),
                "customerId": customer,
                "recipient": f"{customer}@example.com",
                "vendor": "v",
                "status": "SENT",
                "rank": 1,
                "vendorMessageId": f"v-{customer}",
            }
            for log, customer in zip(ids, customers, strict=True)
        ]
    )
    return str(campaign), ids


async def until(check: Any, seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def pending(system: Crmd) -> int:
    return await system.db.webhook_deliveries.count_documents({"status": "pending"})


async def test_applied_receipts_tell_their_own_tenants_webhook_only(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    mine = await subscribe(client, auth, endpoint.at("/mine"), ["message.outcome"])
    other_auth = await sign_in(client, "other@example.com")
    await subscribe(client, other_auth, endpoint.at("/theirs"), ["message.outcome"])
    me, other = await user_id(client, auth), await user_id(client, other_auth)
    campaign, [a, b] = await sent_campaign(system, me, ["c1", "c2"])
    _, [theirs] = await sent_campaign(system, other, ["z1"])
    events = [
        ReceiptEvent("DELIVERED", T0, "r1", message_id=a),
        ReceiptEvent("OPENED", T0 + timedelta(minutes=5), "r2", message_id=a),
        ReceiptEvent("OPENED", T0 + timedelta(minutes=6), "r2bis", message_id=a),  # again
        ReceiptEvent("BOUNCED", T0, "r3", message_id=b, reason="5.1.1 no such user"),
        ReceiptEvent("SOFT_BOUNCED", T0, "r4", message_id=b),  # not an outcome
    ]
    # The other tenant's log gets nothing here: its webhook must hear nothing.
    stream = system.streams.receipts
    await system.redis.xadd(stream, {batch.FIELD: batch.encode(ReceiptBatch("v", events))})
    supervisor = system.start(("receipts",))
    assert await supervisor.wait_healthy(10)
    await until(lambda: _count(system, me, 3))
    assert await deliver(system) == 3
    got = sorted(
        (json.loads(r.body) for r in endpoint.to("/mine")),
        key=lambda e: (e["data"]["messageId"], e["data"]["outcome"]),
    )
    outcomes = [(e["data"]["messageId"], e["data"]["outcome"]) for e in got]
    assert sorted(outcomes) == sorted([(a, "delivered"), (a, "opened"), (b, "bounced")])
    bounced = next(e for e in got if e["data"]["outcome"] == "bounced")
    assert bounced["type"] == "message.outcome"
    assert bounced["data"] == {
        "messageId": b,
        "campaignId": campaign,
        "customerId": "c2",
        "email": "c2@example.com",
        "outcome": "bounced",
        "at": T0.isoformat().replace("+00:00", "Z"),
        "reason": "5.1.1 no such user",
    }
    assert endpoint.to("/theirs") == []
    log = await (await client.get(f"/api/v1/webhooks/{mine['id']}/deliveries", headers=auth)).json()
    assert {d["status"] for d in log["items"]} == {"delivered"} and len(log["items"]) == 3

    # A receipt for the other tenant's message goes to the other tenant's webhook.
    clicked = [ReceiptEvent("CLICKED", T0, "r9", message_id=theirs)]
    await system.redis.xadd(stream, {batch.FIELD: batch.encode(ReceiptBatch("v", clicked))})
    await until(lambda: _count(system, other, 1))
    assert await deliver(system) == 1
    [their_event] = [json.loads(r.body) for r in endpoint.to("/theirs")]
    assert their_event["data"]["messageId"] == theirs
    assert their_event["data"]["outcome"] == "clicked"
    assert len(endpoint.to("/mine")) == 3


async def _count(system: Crmd, user: str, n: int) -> bool:
    return await system.db.webhook_deliveries.count_documents({"userId": user}) >= n


async def test_following_an_unsubscribe_link_tells_the_webhook(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    await subscribe(client, auth, endpoint.at("/u"), ["customer.unsubscribed"])
    me = await user_id(client, auth)
    campaign, _ = await sent_campaign(system, me, ["c7"])
    links = UnsubscribeLinks.from_secret(system.jwt_secret, system.config.server.base_url)
    path = "/" + links.url(me, campaign, customer="c7").split("/", 3)[3]
    done = await client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status == 200
    again = await client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status == 200  # already unsubscribed: no second event
    assert await deliver(system) == 1
    [got] = endpoint.to("/u")
    event = json.loads(got.body)
    assert event["type"] == "customer.unsubscribed"
    assert event["data"] == {"email": "c7@example.com", "customerId": "c7", "campaignId": campaign}


CUSTOMERS = "customer_external_id,name,email\nA1,Ann,ann@example.com\nA2,Bo,bo@example.com\n"


async def test_an_upload_done_tells_the_webhook_once(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint, ingesting: Any
):
    await subscribe(client, auth, endpoint.at("/i"), ["import.done"])
    answer = await (await upload(client, auth, "customers", CUSTOMERS, name="two.csv")).json()
    assert (await wait_done(client, auth, answer["uploadId"]))["status"] == "done"
    await until(lambda: _has_pending(system))
    assert await deliver(system) == 1
    [got] = endpoint.to("/i")
    event = json.loads(got.body)
    assert event["type"] == "import.done"
    assert event["data"] == {
        "uploadId": answer["uploadId"],
        "kind": "customers",
        "fileName": "two.csv",
        "rows": {"received": 2, "valid": 2, "rejected": 0, "stored": 2},
    }
    # Every row rejected: done at once, told all the same.
    rejected = "customer_external_id,name,email\nB1,Bad,not-an-address\n"
    bad = await (await upload(client, auth, "customers", rejected)).json()
    assert bad.get("status") == "done", bad
    assert await deliver(system) == 1
    assert json.loads(endpoint.to("/i")[1].body)["data"]["rows"]["valid"] == 0


async def _has_pending(system: Crmd) -> bool:
    return await pending(system) > 0


async def test_the_clock_delivers_what_was_emitted(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    await subscribe(client, auth, endpoint.at("/clock"), ["import.done"])
    store = TenantStore(system.db, await user_id(client, auth))
    prefix = system.config.redis.stream_prefix
    await emit(store, system.redis, "import.done", {"uploadId": "x"}, prefix=prefix)
    supervisor = system.start(("clock",))
    assert await supervisor.wait_healthy(10)
    await asyncio.wait_for(
        endpoint.arrived.wait(), 3 * system.config.campaigns.clock_interval_seconds
    )
    [got] = endpoint.to("/clock")
    assert json.loads(got.body)["data"] == {"uploadId": "x"}
    await until(lambda: _delivered(system))


async def _delivered(system: Crmd) -> bool:
    return await system.db.webhook_deliveries.count_documents({"status": "delivered"}) == 1
