"""Orders raise ``order`` events as they are written (once per order, ``first`` on a
customer's earliest), and the clock's retention pass deletes old events in bounded
batches, with their times on the customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from crmd.events import model
from crmd.events.model import Event, event_record_id
from crmd.events.orders import OrderEvents
from crmd.events.retention import delete_expired
from crmd.events.store import store_events
from crmd.ingest.chunks import IngestChunk
from crmd.ingest.persist import persist_chunk
from crmd.ingest.rows import OrderRow
from crmd.store.tenant import TenantStore
from tests.events.conftest import customer_id
from tests.events.test_actor import Told, times

NOW = datetime.now(UTC).replace(microsecond=0)


def orders_chunk(user: str, rows: list[OrderRow], upload: str | None = None) -> IngestChunk:
    return IngestChunk(upload or str(ObjectId()), user, "orders", 0, 2_000, orders=rows)


def order(line: int, external: str, days: float, amount: float, **more: Any) -> OrderRow:
    return OrderRow(
        line=line,
        amount=amount,
        orderDate=NOW - timedelta(days=days),
        order_external_id=external,
        **more,
    )


async def order_events(store: TenantStore) -> dict[str, dict[str, Any]]:
    found = store[model.COLLECTION].find({"name": "order"})
    return {d["properties"]["orderId"]: d async for d in found}


async def test_each_new_order_raises_one_order_event(system, owner):
    user = owner.user_id
    told = Told()
    settings = OrderEvents(told, retention_days=365)
    rows = [
        order(2, "O-late", 3, 50.0, customer_external_id="C1", items=["mug"]),
        order(3, "O-early", 10, 20.0, customer_external_id="C1"),
        order(4, "O-mail", 1, 5.5, customerEmail="c2@example.com"),
        order(5, "O-nobody", 1, 9.0, customer_external_id="C404"),
        order(6, "O-ancient", 800, 9.0, customer_external_id="C3"),
    ]
    chunk = orders_chunk(user, rows)
    await persist_chunk(system.db, chunk, orders_written=settings)
    events = await order_events(owner)
    assert sorted(events) == ["O-early", "O-late", "O-mail"]  # no customer, too old: none
    c1, c2 = await customer_id(owner, "C1"), await customer_id(owner, "C2")
    late = events["O-late"]
    assert late["customerId"] == c1
    bought = {"orderId": "O-late", "amount": 50.0, "items": ["mug"], "first": False}
    assert late["properties"] == bought
    assert late["timestamp"].replace(tzinfo=UTC) == NOW - timedelta(days=3)
    assert events["O-early"]["properties"]["first"] is True
    assert events["O-mail"]["customerId"] == c2 and events["O-mail"]["properties"]["first"]
    assert [len(c) for c in told.calls] == [3]
    assert len(await times(owner, c1, "order")) == 2
    # The chunk delivered again (a crash before its ack): nothing new, told again.
    await persist_chunk(system.db, chunk, orders_written=settings)
    assert await owner[model.COLLECTION].count_documents({}) == 3
    assert [len(c) for c in told.calls] == [3, 3]
    assert len(await times(owner, c1, "order")) == 2
    # Another upload with one order again and one new: only the new one is raised.
    more = [
        order(2, "O-late", 3, 50.0, customer_external_id="C1"),
        order(3, "O-next", 0.5, 70.0, customer_external_id="C1"),
    ]
    await persist_chunk(system.db, orders_chunk(user, more), orders_written=settings)
    events = await order_events(owner)
    assert len(events) == 4 and events["O-next"]["properties"]["first"] is False
    assert len(told.calls) == 3 and told.calls[-1] == [events["O-next"]["eventId"]]
    assert events["O-next"]["eventId"].startswith("order:")
    assert len(await times(owner, c1, "order")) == 3


def aged(store: TenantStore, customer: str, name: str, days: list[float]) -> list[Event]:
    return [
        Event(
            id=event_record_id(store.user_id, f"{customer}-{name}-{d}"),
            userId=store.user_id,
            customerId=customer,
            name=name,
            properties={},
            timestamp=NOW - timedelta(days=d),
            eventId=f"{customer}-{name}-{d}",
            receivedAt=NOW,
            source="test",
        )
        for d in days
    ]


async def test_the_retention_pass_deletes_old_events_a_bounded_batch_at_a_time(system, owner):
    c1, c2 = await customer_id(owner, "C1"), await customer_id(owner, "C2")
    events = aged(owner, c1, "buy", [1, 400, 500]) + aged(owner, c2, "view", [366, 10])
    await store_events(owner, events)
    assert len(await times(owner, c1)) == 3
    assert await delete_expired(system.db, NOW, 365, batch=2) == 2
    assert await delete_expired(system.db, NOW, 365, batch=2) == 1
    assert await delete_expired(system.db, NOW, 365, batch=2) == 0
    left = sorted([d["eventId"] async for d in owner[model.COLLECTION].find({})])
    assert left == sorted([f"{c1}-buy-1", f"{c2}-view-10"])
    assert [t.replace(tzinfo=UTC) for t in await times(owner, c1)] == [NOW - timedelta(days=1)]
    assert len(await times(owner, c2, "view")) == 1
    # The pass is one of the clock's tasks.
    assert "expired_events" in [name for name, _ in system.actors["clock"].tasks]
