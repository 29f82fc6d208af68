"""Idempotency-Key on POST /api/v1/customers and /orders: a retry answers the first
answer and queues nothing more; the same key with another body is refused; of two
concurrent requests with one key only one does the work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crmd.http.idempotency import COLLECTION, LEASE, claim_id
from crmd.store.tenant import TenantStore
from tests.customers.conftest import Headers, post
from tests.ingest.conftest import wait_done

pytestmark = pytest.mark.usefixtures("ingesting")

ADA = [{"externalId": "A1", "name": "Ada", "email": "ada@example.com"}]


async def test_a_retry_with_the_same_key_answers_the_first_answer_and_does_nothing_more(
    client: Any, auth: Headers, store: TenantStore
):
    first = await post(client, auth, "customers", ADA, **{"Idempotency-Key": "k-1"})
    assert first[0] == 202, first
    await wait_done(client, auth, first[1]["uploadId"])
    again = await post(client, auth, "customers", ADA, **{"Idempotency-Key": "k-1"})
    assert again == first
    assert await store["uploads"].count_documents({}) == 1
    # Another key is another request.
    other = await post(client, auth, "customers", ADA, **{"Idempotency-Key": "k-2"})
    assert other[0] == 202 and other[1]["uploadId"] != first[1]["uploadId"]


async def test_the_same_key_with_another_body_or_route_is_422(
    client: Any, auth: Headers, store: TenantStore
):
    key = {"Idempotency-Key": "order-7"}
    order = {"customer_external_id": "A1", "amount": 5, "orderDate": "2026-01-01"}
    assert (await post(client, auth, "orders", order, **key))[0] == 202
    status, body = await post(client, auth, "orders", {**order, "amount": 6}, **key)
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused", body
    assert body["error"]["details"] == {"field": "Idempotency-Key"}
    status, body = await post(client, auth, "customers", ADA, **key)
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused"
    assert await store["uploads"].count_documents({}) == 1


async def test_a_refused_request_frees_its_key_for_the_corrected_one(
    client: Any, auth: Headers, store: TenantStore
):
    key = {"Idempotency-Key": "fix-me"}
    bad = [{"externalId": "A1", "name": "Ada", "email": "nope"}]
    status, body = await post(client, auth, "customers", bad, **key)
    assert status == 422 and body["error"]["code"] == "invalid_items"
    status, body = await post(client, auth, "customers", ADA, **key)
    assert status == 202, body
    assert await store["uploads"].count_documents({}) == 1


async def test_keys_are_limited_in_length_and_kept_per_tenant(
    client: Any, auth: Headers, store: TenantStore
):
    long = {"Idempotency-Key": "k" * 256}
    status, body = await post(client, auth, "customers", ADA, **long)
    assert status == 400 and body["error"]["code"] == "bad_idempotency_key"
    assert (await post(client, auth, "customers", ADA, **{"Idempotency-Key": "k" * 255}))[0] == 202
    spaced = await post(client, auth, "customers", ADA, **{"Idempotency-Key": "a b"})
    assert spaced[0] == 400
    # Another user's same key is their own.
    signed = await (
        await client.post("/api/v1/user/dev-login", json={"email": "other@example.com"})
    ).json()
    bob = {"Authorization": f"Bearer {signed['token']}"}
    key = {"Idempotency-Key": "shared"}
    mine = await post(client, auth, "customers", ADA, **key)
    theirs = await post(client, bob, "customers", ADA, **key)
    assert mine[0] == theirs[0] == 202 and mine[1]["uploadId"] != theirs[1]["uploadId"]
    kept = await store[COLLECTION].find_one({"_id": claim_id(store.user_id, "shared")})
    assert kept is not None and kept["status"] == "done"
    expires = kept["expiresAt"].replace(tzinfo=UTC)
    assert expires - datetime.now(UTC) > timedelta(hours=23, minutes=59)


async def test_concurrent_requests_with_one_key_do_the_work_once(
    client: Any, auth: Headers, store: TenantStore
):
    batch = [{"externalId": f"P{i}", "name": "P", "email": f"p{i}@x.io"} for i in range(300)]
    key = {"Idempotency-Key": "burst"}
    answers = await asyncio.gather(
        *(post(client, auth, "customers", batch, **key) for _ in range(6))
    )
    statuses = sorted(status for status, _ in answers)
    assert set(statuses) <= {202, 409} and statuses.count(202) >= 1, answers
    busy = [body for status, body in answers if status == 409]
    assert all(b["error"]["code"] == "idempotency_key_in_progress" for b in busy)
    assert len({body["uploadId"] for status, body in answers if status == 202}) == 1
    assert await store["uploads"].count_documents({}) == 1
    # Once answered, a retry gets that answer.
    status, body = await post(client, auth, "customers", batch, **key)
    assert status == 202 and body["uploadId"] in {b.get("uploadId") for _, b in answers}


async def test_a_claim_left_by_a_crash_is_taken_over_after_the_lease_and_queues_once(
    client: Any, auth: Headers, store: TenantStore
):
    """The first request died after queueing its batch, before it answered: a retry
    within the lease is told to wait; after it, the retry finds the batch's job by the
    claim's work id and answers it, queueing nothing again."""
    key = {"Idempotency-Key": "crashed"}
    first = await post(client, auth, "customers", ADA, **key)
    assert first[0] == 202
    keys = store[COLLECTION]
    _id = claim_id(store.user_id, "crashed")
    # As the claim stood before the answer was written.
    await keys.update_one({"_id": _id}, {"$set": {"status": "pending"}, "$unset": {"answer": ""}})
    status, body = await post(client, auth, "customers", ADA, **key)
    assert status == 409 and body["error"]["code"] == "idempotency_key_in_progress"
    long_ago = datetime.now(UTC) - LEASE - timedelta(seconds=1)
    await keys.update_one({"_id": _id}, {"$set": {"claimedAt": long_ago}})
    status, body = await post(client, auth, "customers", ADA, **key)
    assert status == 202 and body["uploadId"] == first[1]["uploadId"], body
    assert await store["uploads"].count_documents({}) == 1
    await wait_done(client, auth, body["uploadId"])
    assert await store["customers"].count_documents({}) == 1


async def test_a_key_older_than_a_day_is_forgotten(client: Any, auth: Headers, store: TenantStore):
    key = {"Idempotency-Key": "yesterday"}
    first = await post(client, auth, "customers", ADA, **key)
    assert first[0] == 202
    past = datetime.now(UTC) - timedelta(seconds=1)
    await store[COLLECTION].update_one(
        {"_id": claim_id(store.user_id, "yesterday")}, {"$set": {"expiresAt": past}}
    )
    other = [{**ADA[0], "name": "Ada B"}]
    status, body = await post(client, auth, "customers", other, **key)
    assert status == 202 and body["uploadId"] != first[1]["uploadId"], body
