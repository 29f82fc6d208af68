"""An upload done: told to the tenant's webhooks (``import.done``), once per upload
(the event's id is the upload's, so a chunk redone after a crash tells it no twice)."""

from __future__ import annotations

from bson import ObjectId
from redis.asyncio import Redis

from crmd.store.documents import decode, projection
from crmd.store.tenant import TenantStore
from crmd.store.uploads import UploadSummary
from crmd.webhooks.emit import emit
from crmd.webhooks.kinds import Kind


async def announce_done(store: TenantStore, redis: Redis, prefix: str, upload_id: str) -> int:
    """Emit ``import.done`` for the upload if it is done; how many deliveries."""
    doc = await store["uploads"].find_one(
        {"_id": ObjectId(upload_id), "status": "done"}, projection=projection(UploadSummary)
    )
    if doc is None:
        return 0
    upload = decode(doc, UploadSummary)
    rows = upload.rows
    data = {
        "uploadId": upload_id,
        "kind": upload.kind,
        "fileName": upload.fileName,
        "rows": {
            "received": rows.received,
            "valid": rows.valid,
            "rejected": rows.rejected,
            "stored": rows.persisted,
        },
    }
    return await emit(store, redis, Kind.IMPORT_DONE, data, event_id=upload_id, prefix=prefix)
