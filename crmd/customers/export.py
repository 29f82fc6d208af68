"""Exporting one customer (GDPR articles 15 and 20): ``GET /api/v1/customers/{id}/export``.

Everything crmd holds about the person, in one JSON document of a documented shape
(``crmd.customers.schema.CustomerExport``, its ``format`` versioned): the record, every
order (by its external id or its email, as the order figures count them), every event,
every message with what it did, the flows they are or were in, and the suppression
list's entry naming their address. Reads only: each list by an index led by the tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from crmd.customers.schema import (
    EXPORT_FORMAT,
    CustomerExport,
    ExportedFlow,
    ExportedMessage,
    ExportedSuppression,
)
from crmd.customers.service import find_customer, latest_events, record_view
from crmd.store.documents import Customer, Doc
from crmd.store.tenant import TenantStore
from crmd.suppressions import entries

HIDDEN = ("userId", "n", "_v")


async def export(store: TenantStore, id_text: str) -> CustomerExport:
    """The customer whose crmd id, else external id, is ``id_text`` (404 when neither
    is this tenant's), with everything about them."""
    customer = await find_customer(store, id_text)
    record = record_view(customer)
    record.pop("erasing", None)
    return CustomerExport(
        format=EXPORT_FORMAT,
        exportedAt=datetime.now(UTC),
        customer=record,
        orders=await _orders(store, customer),
        events=await latest_events(store, customer.id, None),
        messages=await _messages(store, customer.id),
        flows=await _flows(store, customer.id),
        suppressions=await _suppressions(store, customer.email),
    )


async def _orders(store: TenantStore, customer: Customer) -> list[Doc]:
    found: dict[str, Doc] = {}
    for field, value in (
        ("customer_external_id", customer.customer_external_id),
        ("customerEmail", customer.email),
    ):
        if value:
            async for doc in store["orders"].find({field: value}):
                found[doc["_id"]] = doc
    orders = sorted(found.values(), key=lambda d: _moment(d.get("orderDate")) or _EPOCH)
    shown = []
    for doc in reversed(orders):
        view = {k: v for k, v in doc.items() if k not in HIDDEN}
        view["id"] = view.pop("_id")
        shown.append(view)
    return shown


async def _messages(store: TenantStore, customer_id: str) -> list[ExportedMessage]:
    logs = [d async for d in store["communication_log"].find({"customerId": customer_id})]
    names = await _names(store, "campaigns", {str(d.get("campaignId", "")) for d in logs})
    logs.sort(key=lambda d: _moment(d.get("createdAt")) or _EPOCH, reverse=True)
    return [
        ExportedMessage(
            id=str(doc["_id"]),
            campaignId=str(doc.get("campaignId", "")),
            campaign=names.get(str(doc.get("campaignId", "")), ""),
            vendor=str(doc.get("vendor") or ""),
            recipient=str(doc.get("recipient") or ""),
            message=str(doc.get("message") or ""),
            status=str(doc.get("status", "")),
            reason=doc.get("reason") if isinstance(doc.get("reason"), str) else None,
            createdAt=_moment(doc.get("createdAt")),
            handedAt=_moment(doc.get("handedAt")),
            updatedAt=_moment(doc.get("updatedAt")),
            times={k: t for k, v in (doc.get("times") or {}).items() if (t := _moment(v))},
            opens=int(doc.get("opens") or 0),
            clicks={str(k): int(v) for k, v in (doc.get("clicks") or {}).items()},
        )
        for doc in logs
    ]


async def _flows(store: TenantStore, customer_id: str) -> list[ExportedFlow]:
    cursor = store["flow_states"].find({"customerId": customer_id}, sort=[("updatedAt", -1)])
    states = [d async for d in cursor]
    names = await _names(store, "flows", {str(d.get("flowId", "")) for d in states})
    return [
        ExportedFlow(
            flowId=str(doc.get("flowId", "")),
            flow=names.get(str(doc.get("flowId", "")), ""),
            version=int(doc.get("version", 0)),
            status=str(doc.get("status", "")),
            reason=str(doc.get("reason") or ""),
            enteredAt=_moment(doc.get("enteredAt")),
            updatedAt=_moment(doc.get("updatedAt")),
            trigger=dict(doc.get("trigger") or {}),
        )
        for doc in states
    ]


async def _suppressions(store: TenantStore, email: str) -> list[ExportedSuppression]:
    address = entries.address(email)
    entry = await entries.find(store, address) if address else None
    if entry is None:
        return []
    return [
        ExportedSuppression(
            entry.email, entry.source, entry.reason, entry.campaignId, entry.createdAt
        )
    ]


async def _names(store: TenantStore, collection: str, ids: set[str]) -> dict[str, str]:
    """The names of the campaigns (or flows) among ``ids``, read by ``_id``."""
    wanted = [ObjectId(i) for i in ids if ObjectId.is_valid(i)]
    found = await store[collection].by_ids(wanted, projection={"name": 1})
    return {str(d["_id"]): str(d.get("name") or "") for d in found}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
