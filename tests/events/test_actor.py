"""Events through the events actor on the real Redis and database: stored once whatever
is delivered again, told to ``after_store`` at least once, a crash between storing and
acknowledging survived; and a segment counting events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crmd.actors import build_actors
from crmd.app import Crmd
from crmd.config import Config
from crmd.events import model
from crmd.events.model import Event, EventBatch, event_record_id
from crmd.events.store import store_events
from crmd.services.embedded import Urls
from crmd.store.tenant import TenantStore
from crmd.streams import GROUP, consumer_name
from crmd.testing.servers import make_test_config
from tests.events.conftest import customer_id


@pytest.fixture
def config(services: Urls, port: int) -> Config:
    # A failed entry is taken up again after a second, not ten.
    return make_test_config(
        services, server={"port": port}, streams={"claim_idle_ms": 1000, "max_deliveries": 3}
    )


class Told:
    """An ``after_store`` hook that records what it is told; ``fail`` times it raises
    first (after recording), as a flow's trigger that crashed would."""

    def __init__(self, fail: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    async def __call__(self, store: TenantStore, events: list[Event]) -> None:
        self.calls.append(sorted(e.eventId for e in events))
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the trigger fell over")


def batch(store: TenantStore, customer: str, ids: list[str], source: str) -> EventBatch:
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        Event(
            id=event_record_id(store.user_id, i),
            userId=store.user_id,
            customerId=customer,
            name="buy",
            properties={"i": i},
            timestamp=now - timedelta(days=k),
            eventId=i,
            receivedAt=now,
            source=source,
        )
        for k, i in enumerate(ids)
    ]
    return EventBatch(store.user_id, events, {customer: 1})


async def times(store: TenantStore, customer: str, name: str = "buy") -> list[datetime]:
    doc: Any = await store["customers"].find_one({"_id": customer})
    return list(doc.get("eventTimes", {}).get(name, []))


async def until(check: Any, seconds: float = 15) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached in time")


def with_hook(system: Crmd, told: Told) -> None:
    """Build the actors as the composition root does, with ``told`` as the hook."""
    system.actors = build_actors(system, [], told)


async def test_a_batch_stored_before_a_crash_is_stored_once_and_told_again(system, owner):
    c1 = await customer_id(owner, "C1")
    entry = batch(owner, c1, ["a", "b", "c"], source="req-1")
    # The process before: read the entry, stored its events, died before telling and
    # before acknowledging.
    stream = system.streams.events
    await system.redis.xadd(stream, {model.FIELD: model.encode(entry)})
    me = consumer_name(system.config.streams)
    await system.redis.xreadgroup(GROUP, me, {stream: ">"}, count=1)
    assert [e.eventId for e in await store_events(owner, entry.events)] == ["a", "b", "c"]
    assert len(await times(owner, c1)) == 3
    told = Told()
    with_hook(system, told)
    supervisor = system.start(("events",))
    assert await supervisor.wait_healthy(10)

    async def acked() -> bool:
        return (await system.redis.xpending(stream, GROUP))["pending"] == 0

    await until(acked)
    assert told.calls == [["a", "b", "c"]]  # at least once: told after all
    assert await owner[model.COLLECTION].count_documents({}) == 3
    stored_times = await times(owner, c1)
    assert stored_times == sorted(stored_times, reverse=True) and len(stored_times) == 3


async def test_a_hook_that_fails_is_told_again_and_nothing_is_stored_twice(system, owner):
    c1 = await customer_id(owner, "C1")
    told = Told(fail=1)
    with_hook(system, told)
    supervisor = system.start(("events",))
    assert await supervisor.wait_healthy(10)
    entry = batch(owner, c1, ["x", "y"], source="req-2")
    await system.redis.xadd(system.streams.events, {model.FIELD: model.encode(entry)})

    async def twice() -> bool:
        return len(told.calls) >= 2

    await until(twice)
    assert told.calls == [["x", "y"], ["x", "y"]]
    assert await owner[model.COLLECTION].count_documents({}) == 2
    assert len(await times(owner, c1)) == 2


async def test_a_duplicate_from_another_request_is_neither_counted_nor_told(system, owner):
    c1 = await customer_id(owner, "C1")
    first = await store_events(owner, batch(owner, c1, ["p", "q"], "req-a").events)
    assert len(first) == 2
    # The same ids from another request (posted twice before the first was stored):
    repeat = batch(owner, c1, ["q", "r"], "req-b")
    assert [e.eventId for e in await store_events(owner, repeat.events)] == ["r"]
    # The first request delivered again: its own events are told again, none stored.
    again = await store_events(owner, batch(owner, c1, ["p", "q"], "req-a").events)
    assert [e.eventId for e in again] == ["p", "q"]
    assert await owner[model.COLLECTION].count_documents({}) == 3
    assert len(await times(owner, c1)) == 3


async def test_posted_events_survive_a_restart_of_the_actor(client, auth, owner, system):
    body = [{"customer": f"C{i}", "name": "opened", "id": f"o{i}"} for i in range(5)]
    response = await client.post("/api/v1/events", json=body, headers=auth)
    assert response.status == 202
    # Nobody stores them yet; the actor starts later (a restarted worker) and does.
    assert await owner[model.COLLECTION].count_documents({}) == 0
    supervisor = system.start(("events",))
    assert await supervisor.wait_healthy(10)

    async def all_stored() -> bool:
        return await owner[model.COLLECTION].count_documents({}) == 5

    await until(all_stored)
    assert await supervisor.stop(10)
    system.supervisors.remove(supervisor)
    system.health.supervisors.remove(supervisor)
    told = Told()
    with_hook(system, told)  # a new process: actors built afresh
    again = system.start(("events",))
    assert await again.wait_healthy(10)
    await asyncio.sleep(0.5)
    assert await owner[model.COLLECTION].count_documents({}) == 5
    assert told.calls == []  # acknowledged before the restart: nothing redone


async def test_a_segment_counts_customers_by_their_events(client, auth, owner, system):
    supervisor = system.start(("events",))
    assert await supervisor.wait_healthy(10)
    now = datetime.now(UTC)

    def at(days: float) -> str:
        return (now - timedelta(days=days)).isoformat()

    # C0: 3 buys in the last 30 days; C1: 3 buys, one 40 days ago; C2: 1 buy; the rest none.
    ages = {"C0": [1, 5, 20], "C1": [2, 3, 40], "C2": [1]}
    body = [
        {"customer": c, "name": "buy", "timestamp": at(a)} for c, days in ages.items() for a in days
    ]
    assert (await client.post("/api/v1/events", json=body, headers=auth)).status == 202

    async def counted() -> bool:
        return await owner[model.COLLECTION].count_documents({}) == len(body)

    await until(counted)
    expected = {
        "event.buy.count >= 3 in 30d": 1,
        "event.buy.count >= 3": 2,
        "event.buy.count = 0": 7,
        "event.buy.count > 0 in 1w": 3,
        "event.buy.count < 2 in 30d AND spend >= 2": 8,
    }
    for rule, size in expected.items():
        response = await client.post("/api/v1/segments/preview", json={"rule": rule}, headers=auth)
        answer = await response.json()
        assert response.status == 200, answer
        assert answer["audienceSize"] == size, rule
    made = await client.post(
        "/api/v1/segments", json={"name": "Buyers", "rule": "event.buy.count > 2"}, headers=auth
    )
    assert made.status == 201, await made.json()
    assert (await made.json())["audienceSize"] == 2
