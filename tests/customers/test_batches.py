"""POST /api/v1/customers and /orders: checked as CSV rows are, queued on the ingest
stream as one job, stored by the ingest actor, all of a batch or none of it."""

from __future__ import annotations

from typing import Any

import pytest

from crmd.store.tenant import TenantStore
from tests.customers.conftest import Headers, post
from tests.ingest.conftest import wait_done

pytestmark = pytest.mark.usefixtures("ingesting")

CUSTOMERS = [
    {"externalId": "C1", "name": "Asha Rao", "email": "Asha@Example.com", "spend": 12000.5},
    {
        "customer_external_id": "C2",
        "name": "Ravi",
        "email": "ravi@example.com",
        "visits": 3,
        "lastActive": "2026-05-01",
        "tier": "gold",
        "attrs": {"Newsletter": True},
    },
    {"name": "Meera", "email": "meera@example.com", "location": "Mumbai", "phone": "+91 99"},
]


async def by_external_id(client: Any, auth: Headers) -> dict[str, dict[str, Any]]:
    body = await (await client.get("/api/v1/customers?limit=500", headers=auth)).json()
    return {c["customer_external_id"] or c["email"]: c for c in body["items"]}


async def test_a_batch_of_customers_and_orders_lands_with_order_figures(client: Any, auth: Headers):
    status, answer = await post(client, auth, "customers", CUSTOMERS)
    assert status == 202, answer
    assert answer["accepted"] == 3 and answer["status"] in ("queued", "processing", "done")
    assert answer["follow"] == f"/api/v1/uploads/{answer['uploadId']}"
    job = await wait_done(client, auth, answer["uploadId"])
    assert job["status"] == "done" and job["rows"]["persisted"] == 3
    assert job["kind"] == "customers" and job["fileName"] == "POST /api/v1/customers"

    orders = [
        {
            "customer_external_id": "C1",
            "amount": 500,
            "orderDate": "2026-05-02",
            "order_external_id": "O1",
            "items": ["shoe", "sock"],
        },
        {"customerId": "C1", "amount": "250.50", "date": "2026-06-01T10:00:00Z", "orderId": "O2"},
        {"customerEmail": "meera@example.com", "amount": 100, "orderDate": "2026-02-01"},
    ]
    status, answer = await post(client, auth, "orders", orders)
    assert status == 202, answer
    await wait_done(client, auth, answer["uploadId"])

    customers = await by_external_id(client, auth)
    assert set(customers) == {"C1", "C2", "meera@example.com"}
    asha = customers["C1"]
    assert asha["email"] == "asha@example.com" and asha["spend"] == 12000.5
    assert asha["orderCount"] == 2 and asha["orderTotal"] == 750.5
    assert asha["lastOrderAt"].startswith("2026-06-01T10:00:00")
    ravi = customers["C2"]
    assert ravi["visits"] == 3 and ravi["attrs"] == {"tier": "gold", "newsletter": True}
    assert customers["meera@example.com"]["orderCount"] == 1
    listed = await (await client.get("/api/v1/orders", headers=auth)).json()
    assert sorted(o["amount"] for o in listed["items"]) == [100, 250.5, 500]
    items = {o["order_external_id"]: o["items"] for o in listed["items"]}
    assert items["O1"] == ["shoe", "sock"]


async def test_one_object_is_a_batch_of_one_and_a_later_post_updates_by_key(
    client: Any, auth: Headers
):
    for spend in (10, 20):
        status, answer = await post(
            client,
            auth,
            "customers",
            {"externalId": "K", "name": "K", "email": "k@x.io", "spend": spend},
        )
        assert status == 202 and answer["accepted"] == 1, answer
        await wait_done(client, auth, answer["uploadId"])
    # No external id: the email is the key.
    for name in ("First", "Second"):
        status, answer = await post(client, auth, "customers", {"name": name, "email": "same@x.io"})
        await wait_done(client, auth, answer["uploadId"])
    customers = await by_external_id(client, auth)
    assert customers["K"]["spend"] == 20 and customers["same@x.io"]["name"] == "Second"
    assert len(customers) == 2


async def test_one_bad_item_refuses_the_batch_naming_index_and_field(
    client: Any, auth: Headers, store: TenantStore
):
    batch = [
        *CUSTOMERS,
        {"externalId": "C9", "name": "Bad", "email": "not-an-email"},
        {"externalId": "C10", "email": "x@example.com"},
        {"externalId": "C11", "name": "N", "email": "n@x.io", "spend": "-4"},
        {"externalId": "C12", "name": "N", "email": "n@x.io", "lastActive": "31/12/2024"},
        {"externalId": "C13", "customerId": "C13b", "name": "N", "email": "n@x.io"},
        {"externalId": "C14", "name": {"first": "N"}, "email": "n@x.io"},
        "not an object",
    ]
    status, body = await post(client, auth, "customers", batch)
    assert status == 422, body
    error = body["error"]
    assert error["code"] == "invalid_items" and "7 of 10" in error["message"]
    assert [(d["index"], d["field"], d["code"]) for d in error["details"]] == [
        (3, "email", "invalid_email"),
        (4, "name", "required"),
        (5, "spend", "negative"),
        (6, "lastActive", "invalid_date"),
        (7, "customerId", "duplicate_field"),
        (8, "name", "not_a_value"),
        (9, "$", "not_an_object"),
    ]
    assert all(d["message"] for d in error["details"])
    orders = [
        {"customer_external_id": "C1", "amount": 5, "orderDate": "2026-01-01"},
        {"amount": 5, "orderDate": "2026-01-01"},
        {"customer_external_id": "C1", "amount": 5, "orderDate": "2026-01-01", "colour": "red"},
        {"customer_external_id": "C1", "amount": "1,23", "orderDate": "2026-01-01"},
    ]
    status, body = await post(client, auth, "orders", orders)
    assert status == 422, body
    assert [(d["index"], d["field"]) for d in body["error"]["details"]] == [
        (1, "customer_external_id"),
        (2, "colour"),
        (3, "amount"),
    ]
    assert await store["uploads"].count_documents({}) == 0
    assert await store["customers"].count_documents({}) == 0
    assert await store["orders"].count_documents({}) == 0


async def test_a_batch_over_max_batch_is_413_and_an_empty_one_422(
    client: Any, auth: Headers, store: TenantStore
):
    """[ingest] max_batch is 1000 by default."""
    items = [{"name": f"N{i}", "email": f"n{i}@x.io"} for i in range(1001)]
    status, body = await post(client, auth, "customers", items)
    assert status == 413 and body["error"]["code"] == "batch_too_large", body
    assert body["error"]["details"]["max"] == 1000
    status, body = await post(client, auth, "customers", [])
    assert status == 422 and body["error"]["code"] == "empty_batch"
    response = await client.post(
        "/api/v1/customers", data=b"{not json", headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status == 400
    assert await store["uploads"].count_documents({}) == 0
    status, answer = await post(client, auth, "customers", items[:1000])
    assert status == 202 and answer["accepted"] == 1000
    job = await wait_done(client, auth, answer["uploadId"], timeout=120)
    assert job["rows"]["persisted"] == 1000
    assert await store["customers"].count_documents({}) == 1000
