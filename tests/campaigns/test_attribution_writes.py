"""What storing attributions writes: a new attribution is one insert, the same orders
stored again write nothing, a corrected order is one update, and the same chunk stored
twice at once (a redelivery racing the first delivery) leaves each order attributed
once, as the later write says. Counted by crmd's own counter of the documents in its
write commands, on the suite's database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns.attribution import attribute, utc
from crmd.messages import MessageStatus, message_id
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import a_campaign

USER = "attribution-writer"
SENT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def written(system: Crmd, op: str) -> float:
    sample = system.metrics.registry.get_sample_value(
        "crmd_mongo_documents_total", {"collection": "attributions", "op": op}
    )
    return sample or 0.0


def writes(system: Crmd) -> dict[str, float]:
    return {op: written(system, op) for op in ("insert", "update", "delete")}


async def a_sent_campaign(system: Crmd, customers: list[dict[str, Any]]) -> str:
    """A campaign sent two days ago to ``customers``, with a window of seven days."""
    campaign = ObjectId()
    await system.db.campaigns.insert_one(
        a_campaign(
            campaign,
            "completed",
            userId=USER,
            planTop=len(customers),
            createdAt=SENT - timedelta(minutes=5),
            sentAt=SENT,
            attributionDays=7,
        )
    )
    await system.db.communication_log.insert_many(
        [
            {
                "_id": message_id(str(campaign), c["_id"]),
                "userId": USER,
                "campaignId": str(campaign),
                "customerId": c["_id"],
                "status": MessageStatus.DELIVERED,
                "handedAt": SENT,
                "seq": seq,
            }
            for seq, c in enumerate(customers, 1)
        ]
    )
    return str(campaign)


def customers_of(n: int) -> list[dict[str, Any]]:
    return [
        {"_id": f"customer-{i}", "customer_external_id": f"X{i}", "email": f"x{i}@example.com"}
        for i in range(n)
    ]


def orders_of(n: int, amount: float = 10.0) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            f"order-{i}",
            {
                "customer_external_id": f"X{i}",
                "customerEmail": "",
                "amount": amount + i,
                "orderDate": SENT + timedelta(hours=1 + i),
            },
        )
        for i in range(n)
    ]


async def stored(system: Crmd) -> dict[str, dict[str, Any]]:
    return {d["_id"]: d async for d in system.db.attributions.find({"userId": USER})}


async def test_new_attributions_are_inserted_and_storing_them_again_writes_nothing(
    system: Crmd,
):
    customers = customers_of(3)
    campaign = await a_sent_campaign(system, customers)
    store = TenantStore(system.db, USER)
    before = writes(system)
    assert await attribute(store, orders_of(3), customers) == {campaign}
    first = writes(system)
    assert first == {**before, "insert": before["insert"] + 3}
    docs = await stored(system)
    assert sorted(docs) == ["order-0", "order-1", "order-2"]
    assert docs["order-1"]["campaignId"] == campaign
    assert docs["order-1"]["logId"] == message_id(campaign, "customer-1")
    assert docs["order-1"]["customerId"] == "customer-1"
    assert docs["order-1"]["group"] == "messaged" and docs["order-1"]["amount"] == 11.0

    # Marked for a sum again (a redelivery after a crash must not leave the campaign
    # unsummed: crmd.campaigns.attribution), but not one attribution written.
    assert await attribute(store, orders_of(3), customers) == {campaign}
    assert writes(system) == first
    assert await stored(system) == docs


async def test_a_corrected_order_is_one_update(system: Crmd):
    customers = customers_of(2)
    campaign = await a_sent_campaign(system, customers)
    store = TenantStore(system.db, USER)
    await attribute(store, orders_of(2), customers)
    before = writes(system)
    corrected = orders_of(2, amount=50.0)
    assert await attribute(store, corrected, customers) == {campaign}
    assert writes(system) == {**before, "update": before["update"] + 2}
    docs = await stored(system)
    assert [docs[i]["amount"] for i in ("order-0", "order-1")] == [50.0, 51.0]


async def test_the_same_chunk_stored_twice_at_once_attributes_each_order_once(system: Crmd):
    customers = customers_of(40)
    campaign = await a_sent_campaign(system, customers)
    store = TenantStore(system.db, USER)
    orders = orders_of(40)
    touched = await asyncio.gather(*(attribute(store, orders, customers) for _ in range(2)))
    # Whichever way the two interleave (the second finding the first's, or both
    # inserting and one then updating), each order is attributed once, as stored.
    assert {campaign} in touched
    docs = await stored(system)
    assert len(docs) == 40
    for order_id, order in orders:
        assert docs[order_id]["amount"] == order["amount"]
        assert utc(docs[order_id]["orderDate"]) == order["orderDate"]
