"""``POST /api/v1/messages``: one message to one customer through the campaigns' own
hand-over; transactional ones reach an unsubscribed address but not a dead one; an
Idempotency-Key sends once; and the frequency cap counts campaigns' and posted
marketing messages together."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crmd.app import Crmd
from crmd.config import Config
from crmd.services.embedded import Urls
from crmd.store.tenant import TenantStore
from crmd.suppressions.entries import Entry, suppress
from crmd.testing.servers import make_test_config
from tests.campaigns.test_effect import load_customers
from tests.flows.engine_helpers import user_of


@pytest.fixture
def config(services: Urls, port: int) -> Config:
    return make_test_config(
        services,
        server={"port": port},
        plugins={
            "dummy_vendor": {"delay_min": 0.01, "delay_max": 0.05, "seed": 7, "failure_rate": 0}
        },
        flows={"max_messages_per_customer_per_day": 2},
    )


async def final(system: Crmd, message: str, seconds: float = 20) -> dict[str, Any]:
    """The message's log once it was handed over or refused."""
    for _ in range(int(seconds * 10)):
        log = await system.db.communication_log.find_one({"_id": message})
        if log is not None and (log["status"] != "PENDING" or log.get("vendorMessageId")):
            return log
        await asyncio.sleep(0.1)
    raise AssertionError(f"message {message}: {log}")


async def post(client: Any, auth: Any, key: str | None = None, **body: Any) -> Any:
    headers = {**auth, **({"Idempotency-Key": key} if key else {})}
    return await client.post("/api/v1/messages", headers=headers, json=body)


async def test_transactional_reaches_the_unsubscribed_not_the_bounced_and_a_key_sends_once(
    client: Any, auth: Any, delivering: Crmd
) -> None:
    await load_customers(client, auth, 4)
    user = await user_of(delivering)
    store = TenantStore(delivering.db, user)
    await suppress(
        store,
        [
            Entry("c1@example.com", source="unsubscribe"),
            Entry("c2@example.com", "550 no such user", source="bounce"),
        ],
    )
    answers = {}
    for who, kind in (
        ("C1", "transactional"),
        ("c1@example.com", "marketing"),
        ("C2", "transactional"),
    ):
        posted = await post(
            client, auth, message="Order for {name} shipped", customer=who, kind=kind
        )
        assert posted.status == 202, await posted.text()
        answers[(who, kind)] = await posted.json()
    sent = await final(delivering, answers[("C1", "transactional")]["id"])
    assert sent["vendorMessageId"] and sent["message"].startswith("Order for Customer 1 shipped")
    marketing = await final(delivering, answers[("c1@example.com", "marketing")]["id"])
    assert marketing["status"] == "SUPPRESSED" and "unsubscribed" in marketing["reason"]
    dead = await final(delivering, answers[("C2", "transactional")]["id"])
    assert dead["status"] == "SUPPRESSED" and "550 no such user" in dead["reason"]

    first = await post(
        client, auth, "order-77", message="Receipt", customer="C3", kind="transactional"
    )
    again = await post(
        client, auth, "order-77", message="Receipt", customer="C3", kind="transactional"
    )
    assert (await first.json())["id"] == (await again.json())["id"]
    reused = await post(
        client, auth, "order-77", message="Receipt", customer="C1", kind="transactional"
    )
    assert reused.status == 422
    assert (await reused.json())["error"]["code"] == "idempotency_key_reused"
    await final(delivering, (await first.json())["id"])
    campaign = (await first.json())["campaignId"]
    assert await delivering.db.communication_log.count_documents({"campaignId": campaign}) == 1

    listed = await (await client.get("/api/v1/campaigns", headers=auth)).json()
    assert listed["items"] == [], "the messages' own campaign documents are not campaigns"


async def test_bad_messages_are_refused_naming_the_field(
    client: Any, auth: Any, delivering: Crmd
) -> None:
    await load_customers(client, auth, 2)
    cases = [
        ({"customer": "nobody", "message": "Hi"}, "customer"),
        ({"customer": "C0", "message": "Hi {name"}, "message"),
        ({"customer": "C0", "message": "Hi", "subject": "{oops"}, "subject"),
        ({"customer": "C0", "message": "Hi", "vendor": "carrier-pigeon"}, None),
    ]
    for body, field in cases:
        answer = await post(client, auth, **body)
        assert answer.status == 422, body
        error = (await answer.json())["error"]
        if field is not None:
            assert error["details"]["field"] == field, error
    bad_key = await post(client, auth, "no spaces allowed", customer="C0", message="Hi")
    assert bad_key.status == 400
    assert (await bad_key.json())["error"]["code"] == "bad_idempotency_key"
    assert await delivering.db.communication_log.count_documents({}) == 0


async def test_the_frequency_cap_counts_campaigns_and_posted_marketing_together(
    client: Any, auth: Any, delivering: Crmd
) -> None:
    await load_customers(client, auth, 3)
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "Sale", "message": "Sale, {name}", "rule": "spend >= 0"},
    )
    assert made.status == 201, await made.text()
    campaign = (await made.json())["id"]
    for _ in range(100):
        logs = [d async for d in delivering.db.communication_log.find({"campaignId": campaign})]
        if len(logs) == 3 and all(d.get("vendorMessageId") for d in logs):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the campaign was not handed over")
    # One message today already; the cap is 2: one more marketing message passes.
    second = await (await post(client, auth, message="Tip one", customer="C0")).json()
    third = await (await post(client, auth, message="Tip two", customer="C0")).json()
    receipt = await (
        await post(client, auth, message="Receipt", customer="C0", kind="transactional")
    ).json()
    assert (await final(delivering, second["id"]))["vendorMessageId"]
    capped = await final(delivering, third["id"])
    assert capped["status"] == "SUPPRESSED" and "frequency cap" in capped["reason"]
    assert (await final(delivering, receipt["id"]))["vendorMessageId"], "transactional: not capped"
