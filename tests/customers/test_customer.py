"""GET /api/v1/customers/{id}: the customer with its orders, events, messages and
flows; PATCH: a change checked as a CSV row is. Another user's customer is a 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.ingest.chunks import IngestChunk
from crmd.ingest.persist import persist_chunk
from crmd.ingest.rows import CustomerRow
from crmd.store.tenant import TenantStore
from tests.customers.conftest import Headers, post
from tests.ingest.conftest import wait_done

pytestmark = pytest.mark.usefixtures("ingesting")

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def imported(client: Any, auth: Headers, kind: str, items: list[dict[str, Any]]) -> None:
    status, answer = await post(client, auth, kind, items)
    assert status == 202, answer
    assert (await wait_done(client, auth, answer["uploadId"]))["status"] == "done"


async def customer_id(client: Any, auth: Headers, external: str) -> str:
    body = await (await client.get("/api/v1/customers", headers=auth)).json()
    return next(c["id"] for c in body["items"] if c["customer_external_id"] == external)


@pytest.fixture
async def ada(client: Any, auth: Headers) -> str:
    await imported(
        client,
        auth,
        "customers",
        [
            {"externalId": "A1", "name": "Ada", "email": "ada@example.com", "tier": "gold"},
            {"name": "Bo", "email": "bo@example.com"},
        ],
    )
    orders = [
        {"customer_external_id": "A1", "amount": i + 1, "orderDate": f"2026-01-{i + 1:02d}"}
        for i in range(5)
    ]
    orders.append({"customerEmail": "ada@example.com", "amount": 99, "orderDate": "2026-02-01"})
    orders.append({"customer_external_id": "B9", "amount": 7, "orderDate": "2026-02-02"})
    await imported(client, auth, "orders", orders)
    return await customer_id(client, auth, "A1")


async def test_a_customer_comes_with_its_orders_events_messages_and_flows(
    client: Any, auth: Headers, ada: str, store: TenantStore
):
    await store["communication_log"].insert_many(
        [
            {
                "_id": f"m{i}",
                "campaignId": f"c{i}",
                "customerId": ada,
                "status": "SENT",
                "message": f"Hello Ada {i} " + "x" * 300,
                "createdAt": T0 + timedelta(days=i),
                **({"handedAt": T0 + timedelta(days=i, seconds=5)} if i else {}),
            }
            for i in range(3)
        ]
        + [
            {
                "_id": "other",
                "campaignId": "c0",
                "customerId": "someone",
                "status": "SENT",
                "message": "",
                "createdAt": T0,
            }
        ]
    )
    await store["events"].insert_many(
        [
            {
                "customerId": ada,
                "name": "viewed",
                "properties": {"page": i},
                "timestamp": T0 + timedelta(hours=i),
            }
            for i in range(2)
        ]
    )
    await store["flow_states"].insert_one(
        {
            "flowId": "f1",
            "version": 2,
            "customerId": ada,
            "status": "waiting",
            "enteredAt": T0,
            "updatedAt": T0 + timedelta(hours=1),
        }
    )
    response = await client.get(f"/api/v1/customers/{ada}", headers=auth)
    assert response.status == 200
    body = await response.json()
    customer = body["customer"]
    assert customer["id"] == ada and customer["name"] == "Ada"
    assert customer["orderCount"] == 6 and customer["attrs"] == {"tier": "gold"}
    assert "userId" not in customer and "_v" not in customer
    orders = body["orders"]
    assert orders["total"] == 6
    assert [o["amount"] for o in orders["items"]] == [99, 5, 4, 3, 2, 1]  # latest first
    assert [m["id"] for m in body["messages"]] == ["m2", "m1", "m0"]
    assert body["messages"][0]["message"].startswith("Hello Ada 2")
    assert len(body["messages"][0]["message"]) == 200
    assert body["messages"][0]["handedAt"] and body["messages"][2]["handedAt"] is None
    posted = [e["properties"] for e in body["events"] if e["name"] != "order"]
    assert posted == [{"page": 1}, {"page": 0}], "the latest first (orders raise their own)"
    assert body["flows"] == [
        {
            "flowId": "f1",
            "version": 2,
            "status": "waiting",
            "enteredAt": "2026-03-01T00:00:00Z",
            "updatedAt": "2026-03-01T01:00:00Z",
        }
    ]
    # The external id finds the same customer.
    by_own = await (await client.get("/api/v1/customers/A1", headers=auth)).json()
    assert by_own["customer"]["id"] == ada
    # A customer with nothing else has empty lists.
    bo = await (await client.get("/api/v1/customers", headers=auth)).json()
    bo_id = next(c["id"] for c in bo["items"] if c["email"] == "bo@example.com")
    bare = await (await client.get(f"/api/v1/customers/{bo_id}", headers=auth)).json()
    assert bare["orders"] == {"items": [], "total": 0}
    assert bare["events"] == bare["messages"] == bare["flows"] == []
    missing = await client.get("/api/v1/customers/nobody", headers=auth)
    assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"


async def test_a_change_is_checked_as_a_row_and_keeps_ids(
    client: Any, auth: Headers, ada: str, store: TenantStore
):
    url = f"/api/v1/customers/{ada}"
    change = {
        "name": " Ada L. ",
        "email": "ADA.L@Example.com",
        "phone": "+44 1",
        "attrs": {"tier": None, "score": "42", "vip": True},
    }
    response = await client.patch(url, json=change, headers=auth)
    assert response.status == 200, await response.text()
    customer = (await response.json())["customer"]
    assert customer["id"] == ada and customer["customer_external_id"] == "A1"
    assert customer["name"] == "Ada L." and customer["email"] == "ada.l@example.com"
    assert customer["attrs"] == {"score": 42, "vip": True}
    stored = await store["customers"].find_one({"_id": ada})
    assert stored is not None and stored["userId"] == store.user_id
    unchanged = await client.patch(url, json={}, headers=auth)
    assert unchanged.status == 200 and (await unchanged.json())["customer"] == customer
    refused = {
        "email": ({"email": "not-an-email"}, "email", 422),
        "name": ({"name": "  "}, "name", 422),
        "too long": ({"location": "x" * 1001}, "$.location", 422),
        "unknown": ({"spend": 5}, "$.spend", 422),
        "id": ({"id": "x"}, "$.id", 422),
        "attr name": ({"attrs": {"Bad Name": 1}}, "attrs.Bad Name", 422),
        "attr value": ({"attrs": {"x": [1]}}, "$.attrs[...]", 422),  # msgspec's path
    }
    for case, (body, field, status) in refused.items():
        response = await client.patch(url, json=body, headers=auth)
        assert response.status == status, case
        assert (await response.json())["error"]["details"]["field"] == field, case
    after = await store["customers"].find_one({"_id": ada})
    assert after == stored


async def test_the_email_that_is_a_customers_key_cannot_change(
    client: Any, auth: Headers, ada: str
):
    listed = await (await client.get("/api/v1/customers", headers=auth)).json()
    bo = next(c["id"] for c in listed["items"] if c["email"] == "bo@example.com")
    response = await client.patch(
        f"/api/v1/customers/{bo}", json={"email": "b@example.com"}, headers=auth
    )
    assert response.status == 409 and (await response.json())["error"]["code"] == "email_is_key"
    renamed = await client.patch(f"/api/v1/customers/{bo}", json={"name": "Bo B"}, headers=auth)
    assert renamed.status == 200


async def test_a_later_import_overwrites_a_change(client: Any, auth: Headers, ada: str):
    url = f"/api/v1/customers/{ada}"
    assert (await client.patch(url, json={"location": "Leeds"}, headers=auth)).status == 200
    await imported(
        client,
        auth,
        "customers",
        [{"externalId": "A1", "name": "Ada", "email": "a@x.io", "location": "York"}],
    )
    now = (await (await client.get(url, headers=auth)).json())["customer"]
    assert now["location"] == "York" and now["id"] == ada


async def test_a_batch_accepted_before_a_change_does_not_undo_it_when_stored_after(
    client: Any, auth: Headers, ada: str, store: TenantStore, system: Crmd
):
    before = int(datetime.now(UTC).timestamp() * 1000)
    url = f"/api/v1/customers/{ada}"
    assert (await client.patch(url, json={"location": "Leeds"}, headers=auth)).status == 200
    older = IngestChunk(str(ObjectId()), store.user_id, "customers", 0, before)
    older.customers = [
        CustomerRow(
            line=1,
            name="Ada",
            email="ada@example.com",
            customer_external_id="A1",
            location="Old Town",
        )
    ]
    await persist_chunk(system.db, older)  # a late delivery of an earlier batch
    now = (await (await client.get(url, headers=auth)).json())["customer"]
    assert now["location"] == "Leeds"


async def test_another_users_customer_is_404(client: Any, auth: Headers, ada: str):
    signed = await (
        await client.post("/api/v1/user/dev-login", json={"email": "bob@example.com"})
    ).json()
    bob = {"Authorization": f"Bearer {signed['token']}"}
    for path in (f"/api/v1/customers/{ada}", "/api/v1/customers/A1"):
        assert (await client.get(path, headers=bob)).status == 404
        response = await client.patch(path, json={"name": "Eve"}, headers=bob)
        assert response.status == 404
    mine = await (await client.get(f"/api/v1/customers/{ada}", headers=auth)).json()
    assert mine["customer"]["name"] == "Ada"
