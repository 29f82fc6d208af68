"""Delivering: each attempt signed so that the endpoint can check it with the secret;
a failure retried after its back-off until a 2xx, or given up after the last attempt;
an attempt claimed by one process only; an event emitted twice delivered once, and
emitting costs nothing of the database when nobody listens."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from bson import ObjectId

from crmd.app import Crmd
from crmd.store.tenant import TenantStore
from crmd.webhooks import subscribers
from crmd.webhooks.deliver import deliver_due
from crmd.webhooks.emit import emit
from tests.counted import commands
from tests.webhooks.conftest import (
    Endpoint,
    deliver,
    expected_signature,
    sign_in,
    subscribe,
    user_id,
)


async def one_event(system: Crmd, user: str, event_id: str = "") -> int:
    store = TenantStore(system.db, user)
    data = {"uploadId": "u1", "rows": {"valid": 3}}
    prefix = system.config.redis.stream_prefix
    return await emit(store, system.redis, "import.done", data, event_id=event_id, prefix=prefix)


async def log_of(client: Any, auth: Any, hook: dict[str, Any]) -> list[dict[str, Any]]:
    found = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=auth)
    items: list[dict[str, Any]] = (await found.json())["items"]
    return items


async def test_a_delivery_is_signed_and_the_endpoint_can_check_it(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    hook = await subscribe(client, auth, endpoint.at("/in"), ["import.done"])
    user = await user_id(client, auth)
    before = int(time.time())
    assert await one_event(system, user, "e1") == 1
    assert await deliver(system) == 1
    [got] = endpoint.to("/in")
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["webhook-id"].startswith("msg_")
    assert before <= int(headers["webhook-timestamp"]) <= int(time.time())
    assert headers["webhook-signature"] == expected_signature(hook["secret"], headers, got.body)
    # Any change to the body or the id breaks it: the check means something.
    assert headers["webhook-signature"] != expected_signature(
        hook["secret"], headers, got.body.replace(b"3", b"4")
    )
    event = json.loads(got.body)
    assert event["type"] == "import.done"
    assert event["data"] == {"uploadId": "u1", "rows": {"valid": 3}}
    assert datetime.fromisoformat(event["timestamp"]).tzinfo is not None
    [logged] = await log_of(client, auth, hook)
    assert (logged["status"], logged["attempts"], logged["responseStatus"]) == ("delivered", 1, 204)
    assert logged["id"] == headers["webhook-id"] and logged["nextAt"] is None
    assert await deliver(system, later=3600) == 0  # delivered: never again


async def test_a_500_is_retried_after_its_back_off_then_delivered(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    hook = await subscribe(client, auth, endpoint.at("/r"), ["import.done"])
    await one_event(system, await user_id(client, auth), "e2")
    endpoint.answers += [(500, "busy"), (503, "still busy")]
    assert await deliver(system) == 1
    [logged] = await log_of(client, auth, hook)
    assert (logged["status"], logged["attempts"], logged["responseStatus"]) == ("pending", 1, 500)
    assert logged["responseBody"] == "busy"
    next_at = datetime.fromisoformat(logged["nextAt"])
    assert timedelta(seconds=4) < next_at - datetime.now(UTC) <= timedelta(seconds=5)
    assert await deliver(system) == 0  # not due yet
    assert await deliver(system, later=6) == 1
    [logged] = await log_of(client, auth, hook)
    assert (logged["attempts"], logged["responseStatus"]) == (2, 503)
    waited = datetime.fromisoformat(logged["nextAt"]) - datetime.now(UTC)
    assert timedelta(seconds=25) < waited <= timedelta(seconds=36)  # 30 s after the 2nd
    assert await deliver(system, later=40) == 1
    [logged] = await log_of(client, auth, hook)
    assert (logged["status"], logged["attempts"], logged["responseStatus"]) == ("delivered", 3, 204)
    bodies = {r.body for r in endpoint.to("/r")}
    ids = {r.headers["webhook-id"] for r in endpoint.to("/r")}
    assert len(endpoint.to("/r")) == 3 and len(bodies) == 1 and len(ids) == 1  # the same message
    for got in endpoint.to("/r"):
        assert got.headers["webhook-signature"] == expected_signature(
            hook["secret"], got.headers, got.body
        )


async def test_a_delivery_is_given_up_after_the_last_attempt(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    quick = msgspec.structs.replace(system.config.webhooks, max_attempts=3, timeout_seconds=0.5)
    system.config = msgspec.structs.replace(system.config, webhooks=quick)
    hook = await subscribe(client, auth, endpoint.at("/g"), ["import.done"])
    await one_event(system, await user_id(client, auth), "e3")
    endpoint.answers += [(500, "no"), (302, "elsewhere")]  # a redirect is not followed
    assert await deliver(system) == 1
    assert await deliver(system, later=10) == 1
    endpoint.stall = 2.0  # the third gets no answer in time
    assert await deliver(system, later=100) == 1
    [logged] = await log_of(client, auth, hook)
    assert (logged["status"], logged["attempts"]) == ("failed", 3)
    assert logged["responseStatus"] is None and "no answer within 0.5 s" in logged["error"]
    assert logged["nextAt"] is None
    assert await deliver(system, later=10**6) == 0  # given up for good
    assert len(endpoint.to("/g")) == 3


async def test_two_processes_never_make_the_same_attempt(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    await subscribe(client, auth, endpoint.at("/c"), ["import.done"])
    user = await user_id(client, auth)
    for i in range(6):
        await one_event(system, user, f"c{i}")
    endpoint.stall = 0.2
    assert system.http is not None
    settings, now = system.config.webhooks, datetime.now(UTC)
    made = await asyncio.gather(
        *(deliver_due(system.db, system.http, settings, now) for _ in range(3))
    )
    assert sum(made) == 6
    assert len(endpoint.to("/c")) == 6
    assert len({r.headers["webhook-id"] for r in endpoint.to("/c")}) == 6


async def test_an_event_emitted_twice_with_its_id_is_delivered_once(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    await subscribe(client, auth, endpoint.at("/d"), ["import.done"])
    await subscribe(client, auth, endpoint.at("/d2"), ["import.done", "message.outcome"])
    user = await user_id(client, auth)
    assert await one_event(system, user, "same") == 2  # one per webhook
    assert await one_event(system, user, "same") == 0
    assert await deliver(system) == 2
    assert len(endpoint.to("/d")) == 1 and len(endpoint.to("/d2")) == 1


async def test_emitting_reads_nothing_when_no_webhook_listens(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    hook = await subscribe(client, auth, endpoint.at("/n"), ["customer.unsubscribed"])
    user = await user_id(client, auth)
    other = await user_id(client, await sign_in(client, "quiet@example.com"))
    before = sum(commands(system).values())
    assert await one_event(system, user, "x") == 0  # subscribed to another kind
    assert await one_event(system, other, "y") == 0  # no webhook at all
    assert sum(commands(system).values()) == before
    await client.patch(
        f"/api/v1/webhooks/{hook['id']}", headers=auth, json={"events": ["import.done"]}
    )
    assert await one_event(system, user, "z") == 1
    await client.patch(f"/api/v1/webhooks/{hook['id']}", headers=auth, json={"enabled": False})
    assert await one_event(system, user, "w") == 0


async def test_with_its_redis_sets_lost_emit_still_finds_the_webhooks(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    await subscribe(client, auth, endpoint.at("/l"), ["import.done"])
    user = await user_id(client, auth)
    prefix = system.config.redis.stream_prefix
    await system.redis.delete(
        subscribers.marker_key(prefix), subscribers.kind_key(prefix, "import.done")
    )
    assert await one_event(system, user, "after-loss") == 1  # read from MongoDB
    assert await subscribers.ensure_built(system.db, system.redis, prefix) == 1
    assert await system.redis.sismember(subscribers.kind_key(prefix, "import.done"), user)


async def test_disabling_a_webhook_cancels_what_waits_for_it(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    hook = await subscribe(client, auth, endpoint.at("/x"), ["import.done"])
    await one_event(system, await user_id(client, auth), "e")
    await client.patch(f"/api/v1/webhooks/{hook['id']}", headers=auth, json={"enabled": False})
    assert await deliver(system) == 0
    [logged] = await log_of(client, auth, hook)
    assert logged["status"] == "cancelled" and endpoint.received == []


async def test_with_private_addresses_off_a_name_resolving_privately_is_not_posted_to(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    hook = await subscribe(client, auth, endpoint.at("/p"), ["import.done"])  # allowed then
    await one_event(system, await user_id(client, auth), "private")
    strict = msgspec.structs.replace(system.config.webhooks, allow_private=False, max_attempts=1)
    assert system.http is not None
    assert await deliver_due(system.db, system.http, strict, datetime.now(UTC)) == 1
    [logged] = await log_of(client, auth, hook)
    assert logged["status"] == "failed" and "private address" in logged["error"]
    assert endpoint.received == []


async def test_a_webhook_failing_for_days_is_turned_off_when_a_delivery_is_given_up(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    hook = await subscribe(client, auth, endpoint.at("/dead"), ["import.done"])
    user = await user_id(client, auth)
    one_try = msgspec.structs.replace(system.config.webhooks, max_attempts=1)
    assert system.http is not None
    endpoint.answers += [(500, "")] * 3
    await one_event(system, user, "first")
    assert await deliver_due(system.db, system.http, one_try, datetime.now(UTC)) == 1
    stored = await system.db.webhooks.find_one({"_id": ObjectId(hook["id"])})
    assert stored is not None and stored["enabled"] and stored["failingSince"]
    # Failing for six days (more than disable_after_days): the next give-up turns it off.
    six_days_ago = datetime.now(UTC) - timedelta(days=6)
    await system.db.webhooks.update_one(
        {"_id": ObjectId(hook["id"])}, {"$set": {"failingSince": six_days_ago}}
    )
    await one_event(system, user, "second")
    assert await deliver_due(system.db, system.http, one_try, datetime.now(UTC)) == 1
    seen = await (await client.get(f"/api/v1/webhooks/{hook['id']}", headers=auth)).json()
    assert seen["enabled"] is False
    assert await one_event(system, user, "third") == 0  # nothing recorded for it now
    # Turned on again, its failures start afresh.
    await client.patch(f"/api/v1/webhooks/{hook['id']}", headers=auth, json={"enabled": True})
    stored = await system.db.webhooks.find_one({"_id": ObjectId(hook["id"])})
    assert stored is not None and "failingSince" not in stored


async def test_a_success_clears_the_failing_mark(
    client: Any, auth: Any, system: Crmd, endpoint: Endpoint
):
    hook = await subscribe(client, auth, endpoint.at("/flaky"), ["import.done"])
    await one_event(system, await user_id(client, auth), "f")
    endpoint.answers.append((502, ""))
    assert await deliver(system) == 1
    stored = await system.db.webhooks.find_one({"_id": ObjectId(hook["id"])})
    assert stored is not None and "failingSince" in stored
    assert await deliver(system, later=10) == 1
    stored = await system.db.webhooks.find_one({"_id": ObjectId(hook["id"])})
    assert stored is not None and "failingSince" not in stored and stored["enabled"]
