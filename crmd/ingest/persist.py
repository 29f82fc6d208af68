"""Writing a chunk to MongoDB: idempotent, one bulk operation per step, the later row
winning.

Each record's ``_id`` is derived from its owner and its key, so writing the same chunk
twice finds the same documents. The common case is a new record, so a chunk is first
inserted unordered (SecantusDB inserts about ten times faster than it upserts); only the
rows whose ``_id`` already existed are then updated, and only where the stored version
(``_v``: upload time + line) is older than the row's, so a late redelivery of an old
chunk never overwrites newer data.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from crmd.ingest.chunks import IngestChunk
from crmd.ingest.rows import CustomerRow, OrderRow
from crmd.store.tenant import ScopedCollection, TenantStore

log = structlog.get_logger(__name__)
DUPLICATE_KEY = 11000
Doc = dict[str, Any]


def record_id(user: str, kind: str, key: str) -> str:
    """A stable ``_id`` for (owner, kind, key): 24 hex characters."""
    return hashlib.sha256(f"{user}\x00{kind}\x00{key}".encode()).hexdigest()[:24]


def order_key(row: OrderRow) -> str:
    """The order's own id, else a hash of what it says (so a re-upload matches)."""
    if row.order_external_id:
        return f"x:{row.order_external_id}"
    content = msgspec.json.encode(
        [row.customer_external_id, row.customerEmail, row.amount, row.orderDate, row.items]
    )
    return "h:" + hashlib.sha256(content).hexdigest()


def latest_by_key(rows: Iterable[Any], key: Any) -> list[Any]:
    """Inside one chunk the later row for a key wins."""
    latest: dict[str, Any] = {}
    for row in rows:
        latest[key(row)] = row
    return list(latest.values())


def record_fields(row: CustomerRow | OrderRow) -> Doc:
    """Every field of the row, empty ones too: a later row replaces the whole record."""
    fields = msgspec.structs.asdict(row)
    del fields["line"]
    return fields


async def write_versioned(
    collection: ScopedCollection, records: Sequence[tuple[str, str, Doc]], upload: str
) -> int:
    """Insert (id, version, fields) records; update the ones that existed with an older
    version. Returns how many already existed."""
    now = datetime.now(UTC)
    docs = [
        {"_id": _id, **fields, "_v": version, "uploadId": upload, "createdAt": now,
         "updatedAt": now}
        for _id, version, fields in records
    ]  # fmt: skip
    if not docs:
        return 0
    try:
        await collection.insert_many(docs, ordered=False)
        return 0
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if others:
            raise
        existing = [records[e["index"]] for e in errors]
    updates = [
        ({"_id": _id, "_v": {"$lt": version}},
         {"$set": {**fields, "_v": version, "uploadId": upload, "updatedAt": now}})
        for _id, version, fields in existing
    ]  # fmt: skip
    await collection.bulk_update(updates)
    return len(existing)


async def persist_chunk(db: AsyncDatabase[Doc], chunk: IngestChunk) -> None:
    """Apply one chunk; safe to repeat."""
    store = TenantStore(db, chunk.user, majority=True)
    if chunk.customers:
        rows = latest_by_key(chunk.customers, lambda r: r.key)
        records = [
            (record_id(chunk.user, "customer", r.key), chunk.version(r.line), record_fields(r))
            for r in rows
        ]  # fmt: skip
        await write_versioned(store["customers"], records, chunk.upload)
        await refresh_order_stats(
            store,
            {r.customer_external_id for r in rows if r.customer_external_id},
            {r.email for r in rows},
        )
    if chunk.orders:
        rows = latest_by_key(chunk.orders, order_key)
        records = [
            (record_id(chunk.user, "order", order_key(r)), chunk.version(r.line), record_fields(r))
            for r in rows
        ]
        await write_versioned(store["orders"], records, chunk.upload)
        await refresh_order_stats(
            store,
            {r.customer_external_id for r in rows if r.customer_external_id},
            {r.customerEmail for r in rows if r.customerEmail},
        )
    await record_progress(store, chunk)


async def refresh_order_stats(store: TenantStore, external_ids: set[str], emails: set[str]) -> None:
    """Recompute orderCount, orderTotal and lastOrderAt from the orders themselves for
    every customer these references reach: right whichever file came first, and after
    any re-upload, because nothing is counted incrementally."""
    if not external_ids and not emails:
        return
    customers = [
        doc async for doc in store["customers"].find(
            {"$or": [{"customer_external_id": {"$in": sorted(external_ids)}},
                     {"email": {"$in": sorted(emails)}}]},
            projection={"customer_external_id": 1, "email": 1},
        )
    ]  # fmt: skip
    if not customers:
        return
    all_ids = sorted(
        {c["customer_external_id"] for c in customers if c.get("customer_external_id")}
    )
    all_emails = sorted({c["email"] for c in customers})
    by_id: dict[str, list[Doc]] = defaultdict(list)
    by_email: dict[str, list[Doc]] = defaultdict(list)
    async for order in store["orders"].find(
        {"$or": [{"customer_external_id": {"$in": all_ids}},
                 {"customerEmail": {"$in": all_emails}}]},
        projection={"customer_external_id": 1, "customerEmail": 1, "amount": 1,
                    "orderDate": 1},
    ):  # fmt: skip
        if order.get("customer_external_id"):
            by_id[order["customer_external_id"]].append(order)
        if order.get("customerEmail"):
            by_email[order["customerEmail"]].append(order)
    updates = []
    for customer in customers:
        mine = {o["_id"]: o for o in by_id.get(customer.get("customer_external_id") or "", [])}
        mine.update({o["_id"]: o for o in by_email.get(customer["email"], [])})
        orders = list(mine.values())
        stats = {
            "orderCount": len(orders),
            "orderTotal": round(sum(o["amount"] for o in orders), 2),
            "lastOrderAt": max((o["orderDate"] for o in orders), default=None),
        }
        updates.append(({"_id": customer["_id"]}, {"$set": stats}))
    await store["customers"].bulk_update(updates)


async def record_progress(store: TenantStore, chunk: IngestChunk) -> None:
    """Count the chunk into its upload once (a redelivered chunk is not counted again)
    and mark the upload done when every valid row is persisted."""
    uploads = store["uploads"]
    upload_id = ObjectId(chunk.upload)
    now = datetime.now(UTC)
    counted = await uploads.update_one(
        {"_id": upload_id, "chunksDone": {"$ne": chunk.seq},
         "status": {"$in": ["queued", "processing"]}},
        {"$inc": {"rows.persisted": chunk.size}, "$push": {"chunksDone": chunk.seq},
         "$set": {"status": "processing", "updatedAt": now}},
    )  # fmt: skip
    if counted.modified_count:
        await uploads.update_one(
            {"_id": upload_id, "status": "processing",
             "$expr": {"$gte": ["$rows.persisted", "$rows.valid"]}},
            {"$set": {"status": "done", "finishedAt": now}},
        )  # fmt: skip


async def mark_failed(db: AsyncDatabase[Doc], chunk: IngestChunk, reason: str) -> None:
    store = TenantStore(db, chunk.user, majority=True)
    await store["uploads"].update_one(
        {"_id": ObjectId(chunk.upload)},
        {"$set": {"status": "failed", "reason": reason[:1000],
                  "finishedAt": datetime.now(UTC)}},
    )  # fmt: skip
