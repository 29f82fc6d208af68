"""The stored documents read as Structs: each domain's writer stores the fields its
Struct names, and a read gives them back typed, the stored shape unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns import chunks
from crmd.campaigns.service import campaign_by_id
from crmd.ingest.upload import get_upload
from crmd.messages import MessageStatus
from crmd.segments.service import segment_by_id
from crmd.store import documents
from crmd.store.tenant import TenantStore
from crmd.suppressions import entries
from tests.ingest.conftest import upload, wait_done


def store_for(system: Crmd) -> TenantStore:
    return TenantStore(system.db, str(ObjectId()))


def stored_names(kind: type[msgspec.Struct]) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(kind)}


def test_a_document_with_a_wrong_field_type_is_refused_naming_the_field():
    with pytest.raises(msgspec.ValidationError, match=r"\$\.reason"):
        documents.decode({"_id": "x", "email": "a@b.io", "reason": 3}, documents.Suppression)


async def test_a_suppression_reads_back_as_stored(system: Crmd):
    store = store_for(system)
    wanted = entries.Entry("A@B.io", "asked", "unsubscribe", campaignId="c1")
    assert await entries.suppress(store, [wanted]) == (1, 0)
    raw = await system.db.suppressions.find_one({"userId": store.user_id})
    # (``erased`` is written on an erased customer's hashed entry alone)
    assert set(raw) == stored_names(documents.Suppression) - {"erased"} | {"userId"}
    found = await entries.find(store, "a@b.io")
    assert isinstance(found, documents.Suppression)
    assert (found.id, found.email, found.source, found.campaignId) == (
        raw["_id"],
        "a@b.io",
        "unsubscribe",
        "c1",
    )
    assert isinstance(found.createdAt, datetime) and found.createdAt.tzinfo is not None
    page = await entries.newest_entries(store, None, 10)
    assert page.items == [found] and page.next_before is None
    assert await entries.suppressed_among(store, ["a@b.io", "z@b.io"]) == {
        "a@b.io": "on the suppression list: asked"
    }


async def test_an_upload_reads_back_as_stored_and_answers_as_before(
    system: Crmd, client: Any, auth: dict[str, str]
):
    csv = "customer_external_id,name,email\nK1,Asha,a@x.io\nK2,Bo,not-an-email\n"
    answer = await (await upload(client, auth, "customers", csv, name="people.csv")).json()
    raw = await system.db.uploads.find_one({"_id": ObjectId(answer["uploadId"])})
    assert set(raw) <= stored_names(documents.Upload) | {"userId"}
    assert set(raw["rows"]) == stored_names(documents.UploadRows)
    store = TenantStore(system.db, raw["userId"])
    found = await get_upload(store, answer["uploadId"])
    assert (found.id, found.kind, found.fileName, found.n) == (
        raw["_id"],
        "customers",
        "people.csv",
        1,
    )
    assert (found.rows.received, found.rows.valid, found.rows.rejected) == (2, 1, 1)
    assert [(e.line, e.column) for e in found.errors] == [(3, "email")]
    shown = await (await client.get(f"/api/v1/uploads/{answer['uploadId']}", headers=auth)).json()
    assert shown["errors"] == [
        {k: v for k, v in e.items() if k in ("line", "column", "code", "message")}
        for e in raw["errors"]
    ]
    assert shown["rows"] == raw["rows"]
    assert shown["fileName"] == "people.csv" and shown["id"] == answer["uploadId"]
    listed = await (await client.get("/api/v1/uploads", headers=auth)).json()
    assert listed["items"] == [shown]


async def test_a_segment_reads_back_as_stored_and_answers_as_before(
    system: Crmd, client: Any, auth: dict[str, str]
):
    made = await client.post(
        "/api/v1/segments", json={"name": "Big", "rule": "spend > 5"}, headers=auth
    )
    answered = await made.json()
    raw = await system.db.segments.find_one({"_id": ObjectId(answered["id"])})
    assert set(raw) == stored_names(documents.Segment) | {"userId"}
    found = await segment_by_id(TenantStore(system.db, raw["userId"]), answered["id"])
    assert (found.id, found.name, found.rule, found.n) == (raw["_id"], "Big", "spend > 5", raw["n"])
    assert found.audienceSize == raw["audienceSize"] == answered["audienceSize"]
    again = await (await client.get(f"/api/v1/segments/{answered['id']}", headers=auth)).json()
    moments = ("createdAt", "updatedAt")  # the answer to a POST has the microseconds
    assert {k: v for k, v in again.items() if k not in moments} == {
        k: v for k, v in answered.items() if k not in moments
    }
    assert again["createdAt"] == again["updatedAt"] == answered["createdAt"][:23] + "000Z"
    listed = await (await client.get("/api/v1/segments", headers=auth)).json()
    assert listed["items"] == [again]
    renamed = await client.put(
        f"/api/v1/segments/{answered['id']}", json={"name": "Bigger"}, headers=auth
    )
    assert (await renamed.json())["name"] == "Bigger"
    raw = await system.db.segments.find_one({"_id": raw["_id"]})
    assert raw["name"] == "Bigger" and set(raw) == stored_names(documents.Segment) | {"userId"}


async def test_a_campaign_is_stored_from_its_struct_and_answers_as_before(
    system: Crmd, client: Any, auth: dict[str, str]
):
    body = {"name": "Thanks", "message": "Hi {name}", "rule": "spend > 5", "draft": True}
    answered = await (await client.post("/api/v1/campaigns", json=body, headers=auth)).json()
    raw = await system.db.campaigns.find_one({"_id": ObjectId(answered["id"])})
    assert set(raw) == stored_names(documents.NewCampaign) | {"userId"}
    assert (raw["status"], raw["subject"], raw["sentAt"], raw["byStatus"]) == (
        "draft",
        "",
        None,
        {},
    )
    store = TenantStore(system.db, raw["userId"])
    found = await campaign_by_id(store, answered["id"])
    assert isinstance(found, documents.Campaign)
    assert (found.id, found.n, found.name, found.rule, found.status) == (
        raw["_id"],
        raw["n"],
        "Thanks",
        "spend > 5",
        "draft",
    )
    assert found.stats == raw["stats"] and found.plannedAt is None and found.timeline == {}
    shown = await (await client.get(f"/api/v1/campaigns/{answered['id']}", headers=auth)).json()
    assert shown == {**answered, "createdAt": answered["createdAt"][:23] + "000Z"}
    assert shown["actions"] == ["send", "cancel"]
    listed = await (await client.get("/api/v1/campaigns", headers=auth)).json()
    assert listed["items"] == [shown]
    # What planning and sending add reads back too, and the answer follows it.
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await system.db.campaigns.update_one(
        {"_id": raw["_id"]},
        {
            "$set": {
                "status": "sending",
                "plannedAt": moment,
                "lastSeq": 3,
                "planSeq": 3,
                "chunked": True,
                "timeline.5": [1, 0, 0],
                "stats.sent": 2,
            }
        },
    )
    found = await campaign_by_id(store, answered["id"])
    assert (found.status, found.plannedAt, found.lastSeq, found.chunked) == (
        "sending",
        moment,
        3,
        True,
    )
    assert found.timeline == {"5": [1, 0, 0]}
    shown = await (await client.get(f"/api/v1/campaigns/{answered['id']}", headers=auth)).json()
    assert shown["status"] == "sending" and shown["stats"]["sent"] == 2
    assert "pause" in shown["actions"] and "send" not in shown["actions"]
    progress = documents.decode(
        await system.db.campaigns.find_one(
            {"_id": raw["_id"]}, projection=documents.projection(documents.CampaignProgress)
        ),
        documents.CampaignProgress,
    )
    assert (progress.status, progress.lastSeq, progress.resent) == ("sending", 3, False)


async def test_a_message_log_is_stored_from_its_struct_and_answers_as_before(
    system: Crmd, client: Any, auth: dict[str, str]
):
    body = {"name": "Hi", "message": "Hi {name}", "rule": "spend > 5", "draft": True}
    made = await (await client.post("/api/v1/campaigns", json=body, headers=auth)).json()
    campaign = await system.db.campaigns.find_one({"_id": ObjectId(made["id"])})
    store = TenantStore(system.db, campaign["userId"])
    now = datetime.now(UTC)
    entries = [
        {"_id": f"m{i}", "seq": i, "customerId": f"c{i}", "recipient": f"{i}@x.io", "phone": ""}
        | {"message": f"Hi {i}"}
        for i in (1, 2)
    ]
    entries[0]["values"] = {"name": "One"}
    logs = [
        chunks.new_log(entries[0], made["id"], "dummy", MessageStatus.PENDING, 1, now),
        chunks.suppressed_log(entries[1], made["id"], "dummy", now, "asked"),
    ]
    assert await chunks.insert_logs(store, logs) == (2, [])
    always = stored_names(documents.MessageLog) - {"values", "reason", "times", "gaveUp"}
    always -= {"handedAt", "variant"}
    first = await system.db.communication_log.find_one({"_id": "m1"})
    second = await system.db.communication_log.find_one({"_id": "m2"})
    assert set(first) == always | {"values", "userId"} and first["values"] == {"name": "One"}
    assert set(second) == always | {"reason", "userId"}
    assert (first["status"], second["status"], second["reason"]) == (
        "PENDING",
        "SUPPRESSED",
        "asked",
    )
    moments = {"createdAt": first["createdAt"], "updatedAt": first["updatedAt"]}  # to the ms
    assert documents.decode(first, documents.MessageLog) == msgspec.structs.replace(
        logs[0], **moments
    )
    await system.db.campaigns.update_one({"_id": campaign["_id"]}, {"$set": {"lastSeq": 2}})
    answer = await client.get(f"/api/v1/campaigns/{made['id']}/logs", headers=auth)
    shown = (await answer.json())["items"]
    lines = [documents.decode(raw, documents.LogLine) for raw in (first, second)]
    assert [line.status for line in lines] == [MessageStatus.PENDING, MessageStatus.SUPPRESSED]
    assert shown == [
        {
            "id": raw["_id"],
            "customerId": raw["customerId"],
            "message": raw["message"],
            "status": raw["status"],
            "vendorMessageId": None,
            "reason": raw.get("reason"),
            "updatedAt": shown[0]["updatedAt"],
        }
        for raw in (first, second)
    ]
    target = documents.decode(first, documents.ReceiptTarget)
    assert (target.userId, target.campaignId, target.rank, target.times) == (
        store.user_id,
        made["id"],
        0,
        {},
    )


@pytest.mark.usefixtures("ingesting")
async def test_customers_and_orders_read_back_as_stored_and_answer_as_before(
    system: Crmd, client: Any, auth: dict[str, str]
):
    people = "customer_external_id,name,email,spend,tier\nK1,Asha,a@x.io,12,gold\nK2,Bo,b@x.io,3,\n"
    made = await (await upload(client, auth, "customers", people)).json()
    await wait_done(client, auth, made["uploadId"])
    bought = "customer_external_id,amount,orderDate\nK1,9.5,2026-01-02\n"
    made = await (await upload(client, auth, "orders", bought)).json()
    await wait_done(client, auth, made["uploadId"])
    raw = await system.db.customers.find_one({"customer_external_id": "K1"})
    found = documents.decode_record(raw, documents.Customer)
    assert (found.id, found.name, found.spend, found.attrs, found.orderCount) == (
        raw["_id"],
        "Asha",
        12.0,
        {"tier": "gold"},
        1,
    )
    assert found.extra == {} and found.version == raw["_v"]
    assert documents.encode_record(found) == {k: v for k, v in raw.items() if k != "userId"}
    other = documents.decode_record(
        await system.db.customers.find_one({"customer_external_id": "K2"}), documents.Customer
    )
    assert (other.orderCount, other.orderTotal, other.lastOrderAt, other.attrs) == (0, 0, None, {})
    assert documents.encode_record(other)["orderTotal"] == 0
    # A field no Struct names (an older crmd's) is kept, and answered, as it is.
    await system.db.customers.update_one({"_id": raw["_id"]}, {"$set": {"legacyScore": 7}})
    raw = await system.db.customers.find_one({"_id": raw["_id"]})
    found = documents.decode_record(raw, documents.Customer)
    assert found.extra == {"legacyScore": 7}
    listed = (await (await client.get("/api/v1/customers", headers=auth)).json())["items"]
    shown = next(item for item in listed if item["id"] == raw["_id"])
    hidden = {"_id", "userId", "_v", "n"}
    assert set(shown) == set(raw) - hidden | {"id"}
    assert shown["legacyScore"] == 7 and shown["attrs"] == {"tier": "gold"}
    assert shown["orderCount"] == 1 and shown["spend"] == 12.0
    order_raw = await system.db.orders.find_one({"customer_external_id": "K1"})
    order = documents.decode_record(order_raw, documents.Order)
    assert (order.amount, order.orderDate.date().isoformat(), order.extra) == (
        9.5,
        "2026-01-02",
        {},
    )
    assert documents.encode_record(order) == {k: v for k, v in order_raw.items() if k != "userId"}
    [answered] = (await (await client.get("/api/v1/orders", headers=auth)).json())["items"]
    assert set(answered) == set(order_raw) - hidden | {"id"}
    assert (answered["id"], answered["amount"]) == (order_raw["_id"], 9.5)
