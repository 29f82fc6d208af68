"""``POST /api/v1/events`` against the real app, Redis and database: what is refused
(with each item's index and field, nothing queued), what is accepted, and events landing
through the events actor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from crmd.app import Crmd
from crmd.events import model
from crmd.store.tenant import TenantStore
from tests.events.conftest import customer_id

URL = "/api/v1/events"


async def queued(system: Crmd) -> int:
    return int(await system.redis.xlen(system.streams.events))


async def refused(client: Any, auth: dict[str, str], body: Any) -> list[dict[str, Any]]:
    response = await client.post(URL, json=body, headers=auth)
    answer = await response.json()
    assert response.status == 422, answer
    assert answer["error"]["code"] == "invalid_events"
    assert "nothing was stored" in answer["error"]["message"]
    details: list[dict[str, Any]] = answer["error"]["details"]
    return details


async def stored(store: TenantStore, count: int) -> list[dict[str, Any]]:
    """The tenant's events once ``count`` are there (the actor is asynchronous)."""
    for _ in range(200):
        docs = [d async for d in store[model.COLLECTION].find({}, sort=[("eventId", 1)])]
        if len(docs) >= count:
            return docs
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} events were not stored in time")


async def test_an_unknown_customer_is_refused_by_index_and_nothing_is_queued(
    client, auth, owner, system
):
    body = [
        {"customer": "C1", "name": "viewed"},
        {"customer": "nobody-here", "name": "viewed"},
        {"customer": "c2@example.com", "name": "viewed"},
        {"customer": "ghost@example.com", "name": "viewed"},
    ]
    details = await refused(client, auth, body)
    assert [(d["index"], d["field"]) for d in details] == [(1, "customer"), (3, "customer")]
    assert "unknown_customer" in details[0]["message"]
    assert await queued(system) == 0


async def test_every_bad_item_of_a_batch_is_named_and_nothing_is_queued(
    client, auth, owner, system
):
    years_ahead = (datetime.now(UTC) + timedelta(days=3 * 365)).isoformat()
    years_ago = (datetime.now(UTC) - timedelta(days=5 * 365)).isoformat()
    deep: dict[str, Any] = {}
    for _ in range(8):
        deep = {"d": deep}
    body = [
        {"customer": "C1", "name": "ok"},
        {"customer": "C1", "name": "bad name!"},
        {"customer": "C1", "name": "x", "timestamp": years_ahead},
        {"customer": "C1", "name": "x", "timestamp": years_ago},
        {"customer": "C1", "name": "x", "properties": {"blob": "y" * 20_000}},
        {"customer": "C1", "name": "x", "properties": deep},
        {"customer": "C1", "name": "x", "surprise": True},
    ]
    details = await refused(client, auth, body)
    assert [(d["index"], d["field"]) for d in details] == [
        (1, "name"),
        (2, "timestamp"),
        (3, "timestamp"),
        (4, "properties"),
        (5, "properties"),
        (6, "surprise"),
    ]
    assert "future" in details[1]["message"]
    assert "older than the 365 days" in details[2]["message"]
    assert "deeper than 5 levels" in details[4]["message"]
    assert await queued(system) == 0


async def test_a_megabyte_of_properties_is_413(client, auth, owner, system):
    body = {"customer": "C1", "name": "x", "properties": {"blob": "z" * 1024 * 1024}}
    response = await client.post(URL, json=body, headers=auth)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert await queued(system) == 0


async def test_a_batch_over_the_limit_or_empty_is_refused(client, auth, owner, system):
    details = await refused(client, auth, [{"customer": "C1", "name": "x"}] * 1001)
    assert details[0]["field"] == "$" and "at most 1,000 events" in details[0]["message"]
    details = await refused(client, auth, [])
    assert details[0]["message"] == "the array holds no event"
    assert await queued(system) == 0


async def test_events_are_stored_once_per_id_with_their_customer(client, auth, owner, system):
    supervisor = system.start(("events",))
    assert await supervisor.wait_healthy(10)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    body = [
        {"customer": "C1", "name": "viewed", "id": "e1", "timestamp": at.isoformat()},
        {"customer": "c2@example.com", "name": "viewed", "id": "e2", "properties": {"p": 1}},
        {"customer": "C1", "name": "viewed", "id": "e1"},  # the same id again
    ]
    c2 = await customer_id(owner, "C2")
    third = {"customer": c2, "name": "signed_up"}  # by crmd id
    response = await client.post(URL, json=[*body, third], headers=auth)
    answer = await response.json()
    assert response.status == 202, answer
    assert [(i["index"], i["status"]) for i in answer["items"]] == [
        (0, "accepted"),
        (1, "accepted"),
        (2, "duplicate"),
        (3, "accepted"),
    ]
    assert (answer["accepted"], answer["duplicates"]) == (3, 1)
    docs = await stored(owner, 3)
    by_id = {d["eventId"]: d for d in docs}
    assert by_id["e1"]["customerId"] == await customer_id(owner, "C1")
    assert by_id["e1"]["timestamp"].replace(tzinfo=UTC) == at
    assert by_id["e2"]["customerId"] == c2 and by_id["e2"]["properties"] == {"p": 1}
    generated = answer["items"][3]["id"]
    assert by_id[generated]["name"] == "signed_up" and by_id[generated]["customerId"] == c2
    # Posted again later: a duplicate, stored once, counted once.
    again = await client.post(URL, json=body[0], headers=auth)
    assert (await again.json())["items"][0]["status"] == "duplicate"
    await asyncio.sleep(0.3)
    assert await owner[model.COLLECTION].count_documents({}) == 3
    c1 = await owner["customers"].find_one({"customer_external_id": "C1"})
    assert c1 is not None and len(c1["eventTimes"]["viewed"]) == 1
    c2_doc = await owner["customers"].find_one({"_id": c2})
    assert c2_doc is not None and sorted(c2_doc["eventTimes"]) == ["signed_up", "viewed"]
