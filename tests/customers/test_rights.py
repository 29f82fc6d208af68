"""A customer's data rights against the real system: ``GET /api/v1/customers/{id}/export``
holds everything about them, ``DELETE /api/v1/customers/{id}`` leaves no trace of them in
any collection but a keyed hash on the suppression list, keeps the campaigns' figures,
finishes after a crash half way, and a later import of the same address is never
messaged again. Another tenant's customer is 404 to both."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns import effect, stats
from crmd.config import Config
from crmd.customers import erasure
from crmd.http.keys import CUSTOMERS
from crmd.messages import MessageStatus
from crmd.services.embedded import Urls
from crmd.store.tenant import TenantStore
from crmd.suppressions.erased import ErasedAddresses, erased_id
from crmd.testing.servers import make_test_config
from tests.campaigns.test_delivery_loop import wait_status
from tests.customers.conftest import Headers, post, user_id
from tests.ingest.conftest import upload, wait_done

EMAIL, NAME, EXTERNAL = "ada.erasable@example.com", "Ada Erasable", "ERASE-77"
OTHERS = [(f"K{i}", f"Kept Person {i}", f"kept{i}@example.com") for i in range(4)]


@pytest.fixture
def config(services: Urls, port: int) -> Config:
    return make_test_config(
        services,
        server={"port": port},
        plugins={"dummy_vendor": {"delay_min": 0.01, "delay_max": 0.05, "failure_rate": 0}},
        campaigns={"clock_interval_seconds": 1.0, "clock_lease_seconds": 3.0},
    )


@pytest.fixture
async def running(delivering: Crmd) -> Crmd:
    supervisor = delivering.start(("clock", "events"))
    assert await supervisor.wait_healthy(10)
    return delivering


def strings(value: Any) -> Iterator[str]:
    """Every string in a document, keys and values, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


async def traces_left(
    system: Crmd, needles: tuple[str, ...] = (EMAIL, NAME, EXTERNAL)
) -> list[tuple[str, str]]:
    """(collection, text) of every stored string naming one of ``needles`` (Ada's
    address, name and own id), in every collection of the database."""
    found = []
    wanted = [n.lower() for n in needles]
    for name in await system.db.list_collection_names():
        async for doc in system.db[name].find({}):
            for text in strings(doc):
                if any(n in text.lower() for n in wanted):
                    found.append((name, text[:200]))
    return found


async def load(client: Any, auth: Headers) -> None:
    rows = ["customer_external_id,name,email,spend,location"]
    rows += [f"{EXTERNAL},{NAME},{EMAIL},500,Leeds"]
    rows += [f"{k},{n},{e},300,York" for k, n, e in OTHERS]
    answer = await (await upload(client, auth, "customers", "\n".join(rows) + "\n")).json()
    assert (await wait_done(client, auth, answer["uploadId"], 60))["rows"]["persisted"] == 5


async def campaign_sent(client: Any, auth: Headers, name: str) -> str:
    body = {"name": name, "message": "Hi {name}, from {location}", "rule": "spend > 0"}
    made = await client.post("/api/v1/campaigns", headers=auth, json=body)
    assert made.status == 201, await made.text()
    campaign = str((await made.json())["id"])
    await wait_status(client, auth, campaign, "completed", 60)
    return campaign


async def orders_after(system: Crmd, client: Any, auth: Headers, campaign: str) -> float:
    """An order by Ada and one by K0 after the campaign's message: attributed to it.
    Returns the campaign's revenue once both count."""
    logs = {
        d["recipient"]: d async for d in system.db.communication_log.find({"campaignId": campaign})
    }
    lines = ["order_external_id,customer_external_id,amount,orderDate"]
    for order, who, email, amount in (
        ("O-1", EXTERNAL, EMAIL, 40),
        ("O-2", "K0", OTHERS[0][2], 60),
    ):
        at = logs[email]["handedAt"].replace(tzinfo=UTC) + timedelta(seconds=2)
        lines.append(f"{order},{who},{amount},{at.isoformat()}")
    answer = await (await upload(client, auth, "orders", "\n".join(lines) + "\n")).json()
    assert (await wait_done(client, auth, answer["uploadId"], 60))["rows"]["persisted"] == 2
    async with asyncio.timeout(30):
        while True:
            body = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)).json()
            if body["effect"]["messaged"]["orders"] == 2:
                return float(body["revenue"])
            await asyncio.sleep(0.2)


async def figures(store: TenantStore, campaign: str) -> tuple[dict[str, int], dict[str, Any]]:
    """The campaign's stats and effect recounted from the database now."""
    return await stats.refresh(store, campaign), await effect.count_results(store, campaign)


async def test_export_then_erasure_leaves_only_a_hash_and_the_figures(
    client: Any, auth: Headers, running: Crmd
):
    system = running
    await load(client, auth)
    store = TenantStore(system.db, await user_id(client, auth))
    campaign = await campaign_sent(client, auth, "Spring")
    revenue = await orders_after(system, client, auth, campaign)
    assert revenue == 100
    event = {"customer": EXTERNAL, "name": "viewed", "properties": {"page": f"/u/{EMAIL}"}}
    assert (await client.post("/api/v1/events", json=event, headers=auth)).status == 202
    async with asyncio.timeout(20):
        while not await system.db.events.count_documents({"name": "viewed"}):
            await asyncio.sleep(0.1)
    unsubscribed = {"email": EMAIL, "reason": f"asked by {NAME}"}
    assert (
        await client.post("/api/v1/suppressions", json=unsubscribed, headers=auth)
    ).status == 201
    ada = await store["customers"].find_one({"customer_external_id": EXTERNAL})
    assert ada is not None
    await _a_flow_run(store, ada["_id"])
    bad = f"customer_external_id,name,email,spend\n{EXTERNAL},{NAME},{EMAIL},lots\n"
    answer = await (await upload(client, auth, "customers", bad, name="bad.csv")).json()
    assert (await wait_done(client, auth, answer["uploadId"]))["rows"]["rejected"] == 1

    # The export: a download of everything, in the documented shape.
    response = await client.get(f"/api/v1/customers/{EXTERNAL}/export", headers=auth)
    assert response.status == 200, await response.text()
    disposition = response.headers["Content-Disposition"]
    assert disposition == f'attachment; filename="customer-{ada["_id"]}.json"'
    exported = await response.json()
    assert exported["format"] == "crmd.customer-export/1"
    assert exported["customer"]["email"] == EMAIL and exported["customer"]["id"] == ada["_id"]
    assert [o["order_external_id"] for o in exported["orders"]] == ["O-1"]
    assert exported["orders"][0]["amount"] == 40
    assert sorted(e["name"] for e in exported["events"]) == ["order", "viewed"]  # its order too
    [message] = exported["messages"]
    assert message["campaign"] == "Spring" and message["recipient"] == EMAIL
    assert message["message"].startswith("Hi Ada Erasable, from Leeds\n\nUnsubscribe: http")
    assert message["status"] in ("SENT", "DELIVERED") and "SENT" in message["times"]
    assert message["handedAt"] is not None
    assert [(f["status"], f["trigger"]["name"]) for f in exported["flows"]] == [
        ("waiting", "viewed")
    ]
    assert [(s["email"], s["source"]) for s in exported["suppressions"]] == [(EMAIL, "operator")]

    before = await figures(store, campaign)
    named = {collection for collection, _ in await traces_left(system)}
    assert named == {
        *("customers", "orders", "events", "communication_log"),
        *("flow_states", "suppressions", "upload_errors", "audit"),
    }
    # A crash half way (after the logs were anonymised), then the request again.
    key = system.app[CUSTOMERS].erased
    await erasure.erase(store, EXTERNAL, key, steps=erasure.STEPS[:3])
    marked = await store["customers"].find_one({"_id": ada["_id"]})
    assert marked is not None and marked["erasing"]["pseudonym"].startswith("erased-")
    response = await client.delete(f"/api/v1/customers/{EXTERNAL}", headers=auth)
    report = await response.json()
    assert response.status == 200, report
    assert report["id"] == ada["_id"]
    assert report["deleted"]["customers"] == 1 and report["deleted"]["events"] == 2
    assert report["anonymised"]["orders"] == 1 and report["anonymised"]["attributions"] == 1
    assert report["anonymised"]["flow_states"] == 1 and report["anonymised"]["flow_steps"] == 1
    assert report["suppressed"] is False  # the first run put the hash on the list

    assert await traces_left(system) == []
    # One person stays one, unnamed, in every figure: the first run's pseudonym.
    pseudonym = marked["erasing"]["pseudonym"]
    [log] = [d async for d in store["communication_log"].find({"customerId": pseudonym})]
    assert log["status"] == message["status"] and log["campaignId"] == campaign
    assert log["recipient"] == "" and log["message"] == ""
    [credit] = [d async for d in store["attributions"].find({"customerId": pseudonym})]
    assert credit["amount"] == 40 and credit["campaignId"] == campaign
    [order] = [d async for d in store["orders"].find({"order_external_id": "O-1"})]
    assert order["amount"] == 40 and "customer_external_id" not in order
    [state] = [d async for d in store["flow_states"].find({"customerId": pseudonym})]
    assert state["status"] == "exited" and state["trigger"] == {} and ada["_id"] not in state["_id"]
    assert await figures(store, campaign) == before
    # The audit log keeps what was done, naming the pseudonym, not the person.
    logged = {d["action"]: d async for d in store["audit"].find({})}
    assert logged["customer.exported"]["objectId"] == pseudonym  # asked for as ERASE-77
    assert logged["customer.erased"]["objectId"] == pseudonym == report["erasedAs"]
    body = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)).json()
    assert body["revenue"] == revenue

    # The list shows the hash's start only, and keeps it.
    listed = await (await client.get("/api/v1/suppressions", headers=auth)).json()
    [entry] = listed["items"]
    assert entry["source"] == "erasure" and entry["email"] == "" and len(entry["erased"]) == 12
    kept = await client.delete("/api/v1/suppressions?source=erasure", headers=auth)
    assert kept.status == 409
    assert (await client.delete(f"/api/v1/suppressions/{EMAIL}", headers=auth)).status == 404
    digest = key.digest(store.user_id, EMAIL)
    assert key.digest(store.user_id, EMAIL) == (
        ErasedAddresses.from_secret(system.jwt_secret).digest(store.user_id, EMAIL)
    )
    assert await store["suppressions"].find_one({"_id": erased_id(store.user_id, digest)})

    # Gone: both routes are 404 now, as for a customer never stored.
    for method in (client.delete, client.get):
        path = f"/api/v1/customers/{EXTERNAL}" + ("/export" if method is client.get else "")
        assert (await method(path, headers=auth)).status == 404

    # Imported again: stored, but never messaged, by a campaign or a posted message.
    status, answer = await post(
        client,
        auth,
        "customers",
        {"externalId": EXTERNAL, "name": NAME, "email": EMAIL, "spend": 9},
    )
    assert status == 202
    await wait_done(client, auth, answer["uploadId"])
    again = await campaign_sent(client, auth, "Summer")
    logs = [d async for d in store["communication_log"].find({"campaignId": again})]
    back = await store["customers"].find_one({"customer_external_id": EXTERNAL})
    assert back is not None
    theirs = [d for d in logs if d["customerId"] == back["_id"]]
    assert [(d["status"], "erased" in d["reason"]) for d in theirs] == [
        (MessageStatus.SUPPRESSED, True)
    ]
    others = [d["status"] for d in logs if d["customerId"] != back["_id"]]
    assert others == [MessageStatus.SENT] * len(OTHERS)
    sent = await client.post(
        "/api/v1/messages",
        headers=auth,
        json={"customer": EXTERNAL, "message": "Your receipt", "kind": "transactional"},
    )
    assert sent.status == 202, await sent.text()
    message_id = (await sent.json())["id"]
    async with asyncio.timeout(20):
        while True:
            log = await store["communication_log"].find_one({"_id": message_id})
            if log is not None and log["status"] != MessageStatus.PENDING:
                break
            await asyncio.sleep(0.1)
    assert log["status"] == MessageStatus.SUPPRESSED and "erased" in log["reason"]


async def _a_flow_run(store: TenantStore, customer: str) -> None:
    """A run of a flow, waiting, as the engine stores it (its id names the customer)."""
    flow = str(ObjectId())
    state = f"{flow}:{customer}:0"
    now = (await store["customers"].find_one({"_id": customer}) or {})["createdAt"]
    await store["flow_states"].insert_one(
        {
            "_id": state,
            "flowId": flow,
            "version": 1,
            "customerId": customer,
            "entry": 0,
            "status": "waiting",
            "at": "1",
            "n": 1,
            "dueAt": now + timedelta(days=3),
            "enteredAt": now,
            "updatedAt": now,
            "trigger": {"name": "viewed", "properties": {"email": EMAIL}},
        }
    )
    await store["flow_steps"].insert_one(
        {
            "_id": f"{state}:1",
            "flowId": flow,
            "version": 1,
            "path": "0",
            "kind": "wait",
            "customerId": customer,
            "at": now,
            "outcome": "",
            "next": "1",
        }
    )


async def test_another_tenants_customer_is_404_to_export_and_erasure(
    client: Any, auth: Headers, running: Crmd
):
    await load(client, auth)
    store = TenantStore(running.db, await user_id(client, auth))
    ada = await store["customers"].find_one({"customer_external_id": EXTERNAL})
    assert ada is not None
    signed = await client.post("/api/v1/user/dev-login", json={"email": "bob@example.com"})
    bob = {"Authorization": f"Bearer {(await signed.json())['token']}"}
    for key in (ada["_id"], EXTERNAL):
        exported = await client.get(f"/api/v1/customers/{key}/export", headers=bob)
        assert exported.status == 404
        erased = await client.delete(f"/api/v1/customers/{key}", headers=bob)
        assert erased.status == 404
        assert (await erased.json())["error"]["code"] == "not_found"
    assert await store["customers"].find_one({"_id": ada["_id"]}) is not None
    assert "erasing" not in (await store["customers"].find_one({"_id": ada["_id"]}) or {})
    assert await running.db.suppressions.count_documents({}) == 0
    # Bob's refused erasures are in his log, with no trace of what he asked for.
    bobs = TenantStore(running.db, await user_id(client, bob))
    refused = [d async for d in bobs["audit"].find({"action": "customer.erased"})]
    assert [(d["outcome"], d["objectId"]) for d in refused] == [("refused", "")] * 2
    assert EXTERNAL not in str(refused) and ada["_id"] not in str(refused)


async def test_a_crash_after_any_step_is_finished_by_the_request_sent_again(
    client: Any, auth: Headers, running: Crmd
):
    people = [(f"CRASH-{k}", f"Crashing Person {k}", f"crash{k}@example.com") for k in range(8)]
    assert len(people) == len(erasure.STEPS)
    rows = [{"externalId": x, "name": n, "email": e, "spend": 5} for x, n, e in people]
    status, answer = await post(client, auth, "customers", rows)
    assert status == 202
    await wait_done(client, auth, answer["uploadId"])
    campaign = await campaign_sent(client, auth, "Before the crashes")
    store = TenantStore(running.db, await user_id(client, auth))
    orders = [
        {"customer_external_id": x, "amount": 7, "orderDate": "2026-01-02"} for x, _, _ in people
    ]
    status, answer = await post(client, auth, "orders", orders)
    await wait_done(client, auth, answer["uploadId"])
    before = await stats.refresh(store, campaign)
    key = running.app[CUSTOMERS].erased
    for k, (external, _, _) in enumerate(people):
        # Killed after k steps (none: before the first wrote anything but its mark).
        await erasure.erase(store, external, key, steps=erasure.STEPS[:k])
        assert await store["customers"].count_documents({"customer_external_id": external}) == 1
        response = await client.delete(f"/api/v1/customers/{external}", headers=auth)
        assert response.status == 200, (k, await response.text())
        assert (await response.json())["deleted"]["customers"] == 1
    needles = tuple(t for person in people for t in person)
    assert await traces_left(running, needles) == []
    assert await store["customers"].count_documents({}) == 0
    assert await store["suppressions"].count_documents({"source": "erasure"}) == len(people)
    assert await stats.refresh(store, campaign) == before
    logs = [d async for d in store["communication_log"].find({"campaignId": campaign})]
    assert len({d["customerId"] for d in logs}) == len(people)  # one pseudonym each
    amounts = [d["amount"] async for d in store["orders"].find({})]
    assert amounts == [7] * len(people)  # kept, detached


async def test_a_customer_named_like_a_status_erases_nothing_else(
    client: Any, auth: Headers, running: Crmd
):
    """A customer whose external id, name and address equal a status, a vendor and a
    member's address: erasing them leaves every campaign, flow, segment and the
    member's audit entries as they were, and the lists still answer."""
    await load(client, auth)
    campaign = await campaign_sent(client, auth, "completed")
    steps = [{"wait": "1d"}, {"send": {"message": "Hi {name}"}}]
    flow = {"name": "active", "status": "active", "trigger": {"event": "signup"}, "steps": steps}
    assert (await client.post("/api/v1/flows", headers=auth, json=flow)).status == 201
    segment = {"name": "dummy", "rule": "spend > 0"}
    assert (await client.post("/api/v1/segments", headers=auth, json=segment)).status == 201
    planted = {"externalId": "active", "name": "completed", "email": "ops@example.com"}
    status, job = await post(client, auth, "customers", planted)
    assert status == 202
    await wait_done(client, auth, job["uploadId"], 60)
    store = TenantStore(running.db, await user_id(client, auth))
    kept = {
        name: [d async for d in store[name].find({})]
        for name in ("campaigns", "flows", "flow_versions", "segments")
    }
    who = [d["by"] async for d in store["audit"].find({})]
    erased = await client.delete("/api/v1/customers/active", headers=auth)
    assert erased.status == 200, await erased.text()
    for name, docs in kept.items():
        assert [d async for d in store[name].find({})] == docs, name
    assert [
        d["by"] async for d in store["audit"].find({"action": {"$ne": "customer.erased"}})
    ] == who
    for path in ("campaigns", "flows", "segments", f"campaigns/{campaign}"):
        assert (await client.get(f"/api/v1/{path}", headers=auth)).status == 200, path
