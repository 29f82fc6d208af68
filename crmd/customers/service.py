"""One customer: found by crmd's id or its own, read with what happened to it, changed.

A change is validated as a CSV row is (``crmd.ingest.rows`` through
``crmd.ingest.records``), so that a value a file could not carry cannot be patched in
either. It is stamped with a version newer than any import accepted before it, so a
batch still in the stream cannot overwrite it with older data, while a later import
does (the later record wins, as between files)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from msgspec import UNSET

from crmd.customers.schema import (
    CustomerChange,
    CustomerProfile,
    EventView,
    FlowView,
    MessageView,
    OrderList,
)
from crmd.errors import Conflict, NotFound, Unprocessable
from crmd.ingest.batches import Batches
from crmd.ingest.errors import RowError
from crmd.ingest.headers import attr_name
from crmd.ingest.records import ATTRS, Refused, as_row
from crmd.ingest.rows import CustomerRow, attr_value, validate
from crmd.segments.slices import CustomerVersions
from crmd.store.documents import Customer, Doc, decode_record, encode_record
from crmd.store.tenant import TenantStore
from crmd.suppressions.erased import ErasedAddresses

SHOWN = 100
"""Orders, events, messages and flows a customer's page lists (the latest)."""
MESSAGE_SHOWN = 200
"""Characters of a message's text the page repeats."""
MAX_ID = 1000


class Customers:
    """What the customer routes need, handed over once by the composition root."""

    def __init__(
        self, batches: Batches, versions: CustomerVersions, erased: ErasedAddresses
    ) -> None:
        self.batches = batches
        self.versions = versions
        self.erased = erased
        """The key erased customers' addresses are hashed with (``crmd.customers.erasure``)."""

    async def change(self, store: TenantStore, id_text: str, change: CustomerChange) -> Doc:
        """Apply ``change`` to the customer; returns the record as it now stands."""
        current = await find_customer(store, id_text)
        update = checked_change(current, change)
        if not update:  # nothing to change: the record as it stands
            return record_view(current)
        now = datetime.now(UTC)
        version = f"{int(now.timestamp() * 1000):014d}{ObjectId()}{0:09d}"
        update.setdefault("$set", {}).update({"_v": version, "updatedAt": now})
        await store["customers"].update_one({"_id": current.id}, update)
        await self.versions.changed(store.user_id, [current.n])
        return record_view(await find_customer(store, current.id))


async def find_customer(store: TenantStore, id_text: str) -> Customer:
    """The customer whose crmd id, else whose own (external) id, is ``id_text``: 404
    when neither is this user's."""
    customers = store["customers"]
    found = None
    if len(id_text) <= MAX_ID:
        found = await customers.find_one({"_id": id_text}) or await customers.find_one(
            {"customer_external_id": id_text}
        )
    if found is None:
        raise NotFound(f"customer {id_text[:100]!r} not found")
    return decode_record(found, Customer)


def record_view(customer: Customer) -> Doc:
    """The record as ``GET /api/v1/customers`` lists it: ``id``, not its number."""
    doc = encode_record(customer)
    doc["id"] = doc.pop("_id")
    doc.pop("n", None)
    doc.pop("_v", None)
    return doc


def checked_change(current: Customer, change: CustomerChange) -> Doc:
    """The update ``change`` makes (empty when it names no field), every value checked
    as a CSV row's is: 422 naming the field when one is wrong, 409 when the change
    would move the record's key."""
    item: dict[str, Any] = {"name": current.name, "email": current.email}
    for field in ("name", "email", "phone", "location"):
        value = getattr(change, field)
        if isinstance(value, str):
            item[field] = value
    attrs = {} if change.attrs is UNSET else change.attrs
    for key in attrs:
        if attr_name(key) != key:
            raise Unprocessable(
                f"attribute names are lower-case letters, digits and _ ({attr_name(key)!r}, "
                f"not {key[:60]!r})",
                details={"field": f"{ATTRS}.{key[:60]}"},
                code="bad_attribute_name",
            )
    item[ATTRS] = {k: v for k, v in attrs.items() if v is not None}
    try:
        values, columns = as_row(item, "customers")
    except Refused as exc:
        raise Unprocessable(exc.message, details={"field": exc.field}, code=exc.code) from None
    row = validate(values, 1, "customers", columns)
    if isinstance(row, RowError):
        raise Unprocessable(row.message, details={"field": row.column}, code=row.code)
    assert isinstance(row, CustomerRow)
    checked: Doc = {
        field: getattr(row, field)
        for field in ("name", "email", "phone", "location")
        if isinstance(getattr(change, field), str)
    }
    if checked.get("email", current.email) != current.email and not current.customer_external_id:
        raise Conflict(
            "this customer has no external id, so its email is its key: it cannot change "
            "(give it a customer_external_id by import first)",
            details={"field": "email"},
            code="email_is_key",
        )
    kept = row.attrs
    checked.update({f"{ATTRS}.{k}": attr_value(v) for k, v in kept.items()})
    update: Doc = {"$set": checked} if checked else {}
    removed = [k for k in attrs if k not in kept]
    if removed:
        update["$unset"] = {f"{ATTRS}.{k}": "" for k in removed}
    return update


async def profile(store: TenantStore, id_text: str) -> CustomerProfile:
    """The customer with its latest orders, events, messages and flows."""
    customer = await find_customer(store, id_text)
    orders, total = await latest_orders(store, customer)
    return CustomerProfile(
        customer=record_view(customer),
        orders=OrderList(orders, total),
        events=await latest_events(store, customer.id),
        messages=await latest_messages(store, customer.id),
        flows=await latest_flows(store, customer.id),
    )


async def latest_orders(store: TenantStore, customer: Customer) -> tuple[list[Doc], int]:
    """The customer's orders (by its external id and by its email, as its order
    figures are counted), the latest first, and how many there are."""
    orders = store["orders"]
    wanted = [("customerEmail", customer.email)]
    if customer.customer_external_id:
        wanted.insert(0, ("customer_external_id", customer.customer_external_id))
    found: dict[str, Doc] = {}
    total_ids: set[Any] = set()
    for field, value in wanted:
        async for doc in orders.find({field: value}, projection={"_id": 1}):
            total_ids.add(doc["_id"])
        cursor = orders.find(
            {field: value}, projection={"userId": 0, "n": 0, "_v": 0}, sort=[("orderDate", -1)]
        ).limit(SHOWN)
        async for doc in cursor:
            found[doc["_id"]] = doc
    latest = sorted(found.values(), key=lambda d: d["orderDate"], reverse=True)[:SHOWN]
    for doc in latest:
        doc["id"] = doc.pop("_id")
    return latest, len(total_ids)


async def latest_events(
    store: TenantStore, customer_id: str, limit: int | None = SHOWN
) -> list[EventView]:
    """The customer's events, newest first: the latest ``limit``, or all (an export)."""
    cursor = store["events"].find({"customerId": customer_id}, sort=[("timestamp", -1)])
    if limit is not None:
        cursor = cursor.limit(limit)
    return [
        EventView(
            id=str(doc["_id"]),
            name=str(doc.get("name", "")),
            properties=dict(doc.get("properties") or {}),
            timestamp=_moment(doc.get("timestamp")),
        )
        async for doc in cursor
    ]


async def latest_messages(store: TenantStore, customer_id: str) -> list[MessageView]:
    cursor = (
        store["communication_log"]
        .find(
            {"customerId": customer_id},
            projection={
                "campaignId": 1,
                "status": 1,
                "message": 1,
                "createdAt": 1,
                "handedAt": 1,
            },
            sort=[("createdAt", -1)],
        )
        .limit(SHOWN)
    )
    return [
        MessageView(
            id=str(doc["_id"]),
            campaignId=str(doc.get("campaignId", "")),
            status=str(doc.get("status", "")),
            message=str(doc.get("message", ""))[:MESSAGE_SHOWN],
            createdAt=_moment(doc.get("createdAt")),
            handedAt=_moment(doc.get("handedAt")),
        )
        async for doc in cursor
    ]


async def latest_flows(store: TenantStore, customer_id: str) -> list[FlowView]:
    flows = store["flow_states"]
    cursor = flows.find({"customerId": customer_id}, sort=[("updatedAt", -1)]).limit(SHOWN)
    return [
        FlowView(
            flowId=str(doc.get("flowId", "")),
            version=int(doc.get("version", 0)),
            status=str(doc.get("status", "")),
            enteredAt=_moment(doc.get("enteredAt")),
            updatedAt=_moment(doc.get("updatedAt")),
        )
        async for doc in cursor
    ]


def _moment(value: Any) -> datetime | None:
    """A stored moment, aware (the driver may hand it back naive); None if it is not one."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
