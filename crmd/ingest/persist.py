"""Writing a chunk to MongoDB: idempotent, one bulk operation per step, the later row
winning. Orders are attributed to the campaigns whose messages came before them
(``crmd.campaigns.attribution``) as they are written.

Each record's ``_id`` is derived from its owner and its key, so writing the same chunk
twice finds the same documents. The new records are inserted unordered (SecantusDB
inserts about ten times faster than it upserts), numbered in the order they arrived; the
rows whose ``_id`` already existed are updated, and only where the stored version
(``_v``: upload time + line) is older than the row's, so a late redelivery of an old
chunk never overwrites newer data.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import msgspec
import structlog
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from crmd.campaigns.attribution import attribute
from crmd.ingest.chunks import IngestChunk
from crmd.ingest.rows import CustomerRow, OrderRow, attr_value
from crmd.store.documents import Doc
from crmd.store.reads import find_in
from crmd.store.tenant import ScopedCollection, TenantStore
from crmd.store.writes import insert_new, insert_tallied

log = structlog.get_logger(__name__)


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
    if "attrs" in fields:  # typed on the way in, so rules compare like with like
        fields["attrs"] = {k: attr_value(v) for k, v in fields["attrs"].items()}
    return fields


class Written(NamedTuple):
    numbers: list[int]
    """The numbers (``n``) of the records written."""
    stale: set[str]
    """The ids of records stored already in a newer version than the row's (a late copy
    of an older chunk): not written, and what depends on their fields must not be
    worked out from the row either."""


async def write_versioned(
    store: TenantStore, kind: str, records: Sequence[tuple[str, str, Doc]], upload: str
) -> Written:
    """Insert (id, version, fields) records; update the ones that existed with an older
    version.

    The ones that exist are looked up first (by ``_id``: cheap), so that only new
    records take a number (``n``, the order they arrived in) and join the tally, in the
    transaction that inserts them (``insert_tallied``)."""
    if not records:
        return Written([], set())
    collection = store[kind]
    now = datetime.now(UTC)
    stored = await collection.by_ids(
        [r[0] for r in records], projection={"_id": 1, "n": 1, "_v": 1}
    )
    known = {d["_id"]: d.get("n", 0) for d in stored}
    newer = {d["_id"]: str(d.get("_v") or "") for d in stored}
    stale = {_id for _id, version, _ in records if newer.get(_id, "") > version}
    new = [r for r in records if r[0] not in known]
    first = await store.reserve(kind, len(new))
    docs = [
        {
            "_id": _id,
            **fields,
            "_v": version,
            "n": first + i,
            "uploadId": upload,
            "createdAt": now,
            "updatedAt": now,
        }
        for i, (_id, version, fields) in enumerate(new)
    ]
    raced = await insert_tallied(store, kind, docs) if docs else set()
    numbers = [doc["n"] for i, doc in enumerate(docs) if i not in raced] + list(known.values())
    existing = [r for r in records if r[0] in known] + [new[i] for i in sorted(raced)]
    if not existing:
        return Written(numbers, stale)
    if raced:  # another writer numbered them
        found = await collection.by_ids([new[i][0] for i in raced], projection={"n": 1})
        numbers += [d.get("n", 0) for d in found]
    updates = [
        (
            {"_id": _id, "_v": {"$lt": version}},
            {"$set": {**fields, "_v": version, "uploadId": upload, "updatedAt": now}},
        )
        for _id, version, fields in existing
    ]
    await collection.bulk_update(updates)
    return Written(numbers, stale)


Changed = Callable[[str, Iterable[int]], Awaitable[None]]
"""Told the user and the numbers of the customers a chunk wrote, once they are written
(``crmd.segments.slices.CustomerVersions.changed``)."""


async def _unchanged(user: str, numbers: Iterable[int]) -> None:
    return None


class OrdersWritten(Protocol):
    async def __call__(
        self,
        store: TenantStore,
        orders: list[tuple[str, Doc]],
        customers: list[Doc],
        index: OrderIndex | None,
        source: str,
        /,
    ) -> None:
        """Told the orders a chunk wrote (``(_id, fields)``, none stored since in a newer
        version), the customers they name and those customers' orders, and what wrote
        them (``upload:<id>:<seq>``, the same when the chunk is written again): where
        orders raise their events (``crmd.events.orders.OrderEvents``)."""


async def no_order_events(
    store: TenantStore,
    orders: list[tuple[str, Doc]],
    customers: list[Doc],
    index: OrderIndex | None,
    source: str,
    /,
) -> None:
    return None


async def persist_chunk(
    db: AsyncDatabase[Doc],
    chunk: IngestChunk,
    changed: Changed = _unchanged,
    orders_written: OrdersWritten = no_order_events,
) -> bool:
    """Apply one chunk; safe to repeat. The orders it writes are told to
    ``orders_written`` (each new one raises an ``order`` event). True when the chunk
    may have finished its upload (``record_progress``)."""
    store = TenantStore(db, chunk.user, majority=True)
    if chunk.customers:
        rows = latest_by_key(chunk.customers, lambda r: r.key)
        # Each customer's order stats travel with its own write: no read-back, no
        # second write (SecantusDB reads a document back slower than it writes one).
        orders = await OrderIndex.load(
            store, {r.customer_external_id for r in rows}, {r.email for r in rows}
        )
        records = [
            (
                record_id(chunk.user, "customer", r.key),
                chunk.version(r.line),
                {**record_fields(r), **orders.stats(r.customer_external_id, r.email)},
            )
            for r in rows
        ]
        written = await write_versioned(store, "customers", records, chunk.upload)
        await changed(chunk.user, written.numbers)
    if chunk.orders:
        rows = latest_by_key(chunk.orders, order_key)
        records = [
            (record_id(chunk.user, "order", order_key(r)), chunk.version(r.line), record_fields(r))
            for r in rows
        ]
        stale = (await write_versioned(store, "orders", records, chunk.upload)).stale
        refreshed, customers, owned = await refresh_order_stats(
            store, {r.customer_external_id for r in rows}, {r.customerEmail for r in rows}
        )
        await changed(chunk.user, refreshed)
        # An order stored since in a newer version keeps the attribution made from it.
        fresh = [(i, fields) for i, _, fields in records if i not in stale]
        await attribute(store, fresh, customers)
        await orders_written(store, fresh, customers, owned, f"upload:{chunk.upload}:{chunk.seq}")
    return await record_progress(store, chunk)


async def _find_by_any(
    collection: ScopedCollection, fields: dict[str, list[str]], projection: dict[str, int]
) -> list[Doc]:
    """Documents whose ``field`` is in its list, for any of the fields: indexed ``$in``
    queries per field. (An ``$or`` of ``$in``s makes SecantusDB scan the whole
    collection, testing every document against every value: minutes on 20k rows.)"""
    found: dict[Any, Doc] = {}
    for field, values in fields.items():
        async for doc in find_in(collection, field, values, None, projection):
            found[doc["_id"]] = doc
    return list(found.values())


class OrderIndex:
    """The orders of a set of customers, by external id and by email."""

    def __init__(self, orders: list[Doc]) -> None:
        self.by_id: dict[str, list[Doc]] = defaultdict(list)
        self.by_email: dict[str, list[Doc]] = defaultdict(list)
        for order in orders:
            if order.get("customer_external_id"):
                self.by_id[order["customer_external_id"]].append(order)
            if order.get("customerEmail"):
                self.by_email[order["customerEmail"]].append(order)

    @classmethod
    async def load(cls, store: TenantStore, external_ids: set[str], emails: set[str]) -> OrderIndex:
        return cls(
            await _find_by_any(
                store["orders"],
                {
                    "customer_external_id": sorted(i for i in external_ids if i),
                    "customerEmail": sorted(e for e in emails if e),
                },
                {"customer_external_id": 1, "customerEmail": 1, "amount": 1, "orderDate": 1},
            )
        )

    def stats(self, external_id: str, email: str) -> Doc:
        mine = {o["_id"]: o for o in self.by_id.get(external_id, [])} if external_id else {}
        mine.update({o["_id"]: o for o in self.by_email.get(email, [])})
        return order_stats(list(mine.values()))


async def refresh_order_stats(
    store: TenantStore, external_ids: set[str], emails: set[str]
) -> tuple[list[int], list[Doc], OrderIndex | None]:
    """After orders are written: recompute orderCount, orderTotal and lastOrderAt of every
    customer they name, from the orders themselves (nothing is counted incrementally, so
    the stats are right whichever file came first and after any re-upload). Only
    customers whose stats changed are written; returns their numbers, every customer
    the orders name (for their attribution to campaigns), and those customers' orders
    (whether an order is a customer's first; None when no customer is named)."""
    customers = await _find_by_any(
        store["customers"],
        {
            "customer_external_id": sorted(i for i in external_ids if i),
            "email": sorted(e for e in emails if e),
        },
        {"customer_external_id": 1, "email": 1, "n": 1, **dict.fromkeys(STATS, 1)},
    )
    if not customers:
        return [], [], None
    orders = await OrderIndex.load(
        store,
        {c.get("customer_external_id") or "" for c in customers},
        {c["email"] for c in customers},
    )
    updates = []
    numbers = []
    for customer in customers:
        stats = orders.stats(customer.get("customer_external_id") or "", customer["email"])
        current = {k: customer.get(k, NO_ORDERS[k]) for k in STATS}
        if _as_naive(current) != _as_naive(stats):
            updates.append(({"_id": customer["_id"]}, {"$set": stats}))
            numbers.append(customer.get("n", 0))
    if updates:
        await store["customers"].bulk_update(updates)
    return numbers, customers, orders


STATS = ("orderCount", "orderTotal", "lastOrderAt")
NO_ORDERS: Doc = {"orderCount": 0, "orderTotal": 0, "lastOrderAt": None}


def order_stats(orders: list[Doc]) -> Doc:
    return {
        "orderCount": len(orders),
        "orderTotal": round(sum(o["amount"] for o in orders), 2),
        "lastOrderAt": max((o["orderDate"] for o in orders), default=None),
    }


def _as_naive(stats: Doc) -> Doc:
    """Dates compared without their zone (the driver may hand them back either way)."""
    last = stats["lastOrderAt"]
    return {**stats, "lastOrderAt": last.replace(tzinfo=None) if last else None}


async def record_progress(store: TenantStore, chunk: IngestChunk) -> bool:
    """Count the chunk into its upload once and mark the upload done when every valid
    row is persisted; True when this chunk is, or (redelivered) may be, its upload's
    last (its webhooks are then told, ``crmd.ingest.finished``).

    Each stored chunk leaves a marker document; the first to insert it adds the chunk's
    rows to the count. A redelivered chunk finds its marker and sets the count from all
    the markers instead, which also repairs a count missed by a crash between the two.
    (The upload used to keep the list of done chunks itself: on a million rows that
    document grew to 2,000 entries rewritten, and diffed, on every chunk.)"""
    uploads = store["uploads"]
    upload_id = ObjectId(chunk.upload)
    now = datetime.now(UTC)
    # "receiving": the rows were published but the receiver has not said so yet.
    active = {"_id": upload_id, "status": {"$in": ["receiving", "queued", "processing"]}}
    marker = {"_id": f"{chunk.upload}:{chunk.seq}", "uploadId": chunk.upload, "rows": chunk.size}
    update: Doc = {"$set": {"status": "processing", "updatedAt": now}}
    redelivered = bool(await insert_new(store["upload_chunks"].insert_many([marker])))
    if not redelivered:
        update["$inc"] = {"rows.persisted": chunk.size}
    else:
        update["$set"]["rows.persisted"] = await persisted_rows(store, chunk.upload)
    counted = await uploads.update_one(active, update)
    if not counted.modified_count:
        counted = await revive(store, chunk, now)
    if counted.modified_count:
        finished = await uploads.update_one(
            {
                "_id": upload_id,
                "status": "processing",
                "$expr": {"$gte": ["$rows.persisted", "$rows.valid"]},
            },
            {"$set": {"status": "done", "finishedAt": now}},
        )
        return bool(finished.modified_count) or redelivered
    return redelivered


async def mark_failed(db: AsyncDatabase[Doc], chunk: IngestChunk, reason: str) -> None:
    """The upload failed because this chunk was given up on (dead-lettered); the chunk
    is remembered, so that replaying it (``crmd dead-letters replay``) revives the
    upload."""
    store = TenantStore(db, chunk.user, majority=True)
    await store["uploads"].update_one(
        {"_id": ObjectId(chunk.upload)},
        {
            "$set": {"status": "failed", "reason": reason[:1000], "finishedAt": datetime.now(UTC)},
            "$addToSet": {"deadChunks": chunk.seq},
        },
    )


async def revive(store: TenantStore, chunk: IngestChunk, now: datetime) -> Any:
    """A chunk the upload failed for was stored after all (an operator replayed it):
    when it was the last such chunk, the upload is processing again. Chunks stored
    while it stood failed were not counted, so the count is taken from every marker."""
    uploads = store["uploads"]
    upload_id = ObjectId(chunk.upload)
    pulled = await uploads.update_one(
        {"_id": upload_id, "status": "failed", "deadChunks": chunk.seq},
        {"$pull": {"deadChunks": chunk.seq}},
    )
    if not pulled.modified_count:
        return pulled  # any other chunk of an upload not in progress: nothing to do
    log.info("upload.chunk_replayed", upload_id=chunk.upload, seq=chunk.seq)
    counted = {"rows.persisted": await persisted_rows(store, chunk.upload)}
    revived = await uploads.update_one(
        {"_id": upload_id, "status": "failed", "deadChunks": {"$size": 0}},
        {
            "$set": {"status": "processing", "updatedAt": now, **counted},
            "$unset": {"reason": "", "finishedAt": ""},
        },
    )
    if not revived.modified_count:  # other chunks still dead: only the count moves
        await uploads.update_one({"_id": upload_id}, {"$set": counted})
    return revived


async def persisted_rows(store: TenantStore, upload: str) -> int:
    """The upload's rows stored so far, from the markers its stored chunks left."""
    markers = store["upload_chunks"].find({"uploadId": upload}, projection={"rows": 1})
    return sum([m["rows"] async for m in markers])
