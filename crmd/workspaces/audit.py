"""The audit log: one document per recorded action, appended and never changed.

Who (a person's id and address, or a key's id and name), when, from where (the
caller's network address), what (``campaign.created``...), on which object, and the
names of the fields sent (never their values). Refused attempts at a recorded action
are written too, with why.

This module is the only one that writes the ``audit`` collection, and it does three
things only: append an entry (``record``); delete the entries older than ``[audit]
retention_days`` (``delete_expired``, a clock task); and, when a customer is erased,
replace their traces in the entries (``rewrite_traces``: the law's right to erasure
outranks the log's; what was done, when and by whom stays). Nothing else changes or
deletes an entry; ``tests/workspaces/test_audit_log.py`` holds crmd to that."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiohttp import web
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from crmd.store.tenant import TenantStore
from crmd.workspaces.access import Caller

log = structlog.get_logger(__name__)
COLLECTION = "audit"
FIELDS_KEPT = 50
OBJECT: web.ResponseKey[str] = web.ResponseKey("crmd_audit_object", str)
"""Set by a handler whose path names its object in a way the log must not keep (an
erased customer's own id): the entry names this instead."""
PURGE_BATCH = 5_000
"""Entries one clock pass deletes at most (the next pass goes on)."""
REWRITE_BATCH = 500


async def record(
    db: AsyncDatabase[dict[str, Any]],
    caller: Caller,
    action: str,
    *,
    object_id: str = "",
    fields: list[str] | None = None,
    refused: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the caller's workspace's log."""
    entry: dict[str, Any] = {
        "_id": ObjectId(),
        "at": datetime.now(UTC),
        "action": action,
        "outcome": "refused" if refused else "done",
        "by": caller.who(),
        "from": caller.address,
        "objectId": object_id,
        "fields": (fields or [])[:FIELDS_KEPT],
    }
    if refused:
        entry["reason"] = refused
    if details:
        entry["details"] = details
    await TenantStore(db, caller.workspace)[COLLECTION].insert_one(entry)


async def delete_expired(db: AsyncDatabase[dict[str, Any]], now: datetime, days: int) -> int:
    """Delete up to ``PURGE_BATCH`` entries older than ``days``, every workspace's (the
    ``retention`` index is on the time alone); how many were deleted. The ids are read
    first so that one pass is bounded however far behind the clock is."""
    cutoff = now - timedelta(days=days)
    old = db[COLLECTION].find(
        {"at": {"$lt": cutoff}}, projection={"_id": 1}, sort=[("at", 1)], limit=PURGE_BATCH
    )
    ids = [doc["_id"] async for doc in old]
    if not ids:
        return 0
    result = await db[COLLECTION].delete_many({"_id": {"$in": ids}, "at": {"$lt": cutoff}})
    log.info("audit.expired", deleted=result.deleted_count, before=cutoff.isoformat())
    return result.deleted_count


async def rewrite_traces(
    store: TenantStore, changes: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> int:
    """Set ``changes(entry)`` on each of the workspace's entries it is not empty for (an
    erased customer's address or id replaced); how many were changed. Read whole: a
    trace may be in any field."""
    updates = [
        ({"_id": entry["_id"]}, {"$set": changed})
        async for entry in store[COLLECTION].find({})
        if (changed := changes(entry))
    ]
    done = 0
    for start in range(0, len(updates), REWRITE_BATCH):
        batch = updates[start : start + REWRITE_BATCH]
        done += (await store[COLLECTION].bulk_update(batch)).matched_count
    return done
