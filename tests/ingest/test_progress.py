"""An upload's persisted count: each chunk counted once, and a count missed by a crash
between a chunk's marker and its count repaired when the chunk comes again."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId

from crmd.app import Crmd
from crmd.ingest.chunks import IngestChunk
from crmd.ingest.persist import record_progress
from crmd.ingest.rows import CustomerRow
from crmd.store.tenant import TenantStore


def chunk(upload: ObjectId, seq: int, rows: int) -> IngestChunk:
    made = [CustomerRow(line=i, name="N", email=f"n{i}@x.io") for i in range(rows)]
    return IngestChunk(str(upload), "u1", "customers", seq, 1, customers=made)


async def test_chunks_are_counted_once_and_a_lost_count_is_repaired(system: Crmd):
    store = TenantStore(system.db, "u1")
    upload = ObjectId()
    await store["uploads"].insert_one(
        {
            "_id": upload,
            "status": "queued",
            "chunks": 3,
            "rows": {"valid": 12, "persisted": 0},
            "createdAt": datetime.now(UTC),
        }
    )
    for _ in range(3):  # delivered three times
        await record_progress(store, chunk(upload, 0, 5))
    doc = await store["uploads"].find_one({"_id": upload})
    assert (doc["status"], doc["rows"]["persisted"]) == ("processing", 5)
    # A crash after chunk 1's marker, before its count: the redelivery repairs it.
    await store["upload_chunks"].insert_one(
        {"_id": f"{upload}:1", "uploadId": str(upload), "rows": 5}
    )
    await record_progress(store, chunk(upload, 1, 5))
    assert (await store["uploads"].find_one({"_id": upload}))["rows"]["persisted"] == 10
    await record_progress(store, chunk(upload, 2, 2))
    doc = await store["uploads"].find_one({"_id": upload})
    assert (doc["status"], doc["rows"]["persisted"]) == ("done", 12)
