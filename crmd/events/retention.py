"""Events are kept ``[events] retention_days``: a clock task deletes older ones, a
bounded batch a pass, and takes their times off the customers' lists with them.

(SecantusDB does run TTL indexes; a clock task is used instead so that the customers'
``eventTimes`` lose the same times as the events, and so that a changed retention
needs no index rebuilt.)
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase

from crmd.events.model import COLLECTION
from crmd.segments.ast import EVENT_TIMES
from crmd.store.reads import in_batches
from crmd.store.tenant import TenantStore

log = structlog.get_logger(__name__)


async def delete_expired(
    db: AsyncDatabase[dict[str, Any]], now: datetime, days: int, batch: int
) -> int:
    """Delete up to ``batch`` events older than ``days`` (every tenant's: the index
    ``retention`` is on the time alone); how many were deleted. The times go from the
    customers first: a crash in between leaves the events for the next pass."""
    cutoff = now - timedelta(days=days)
    events = db[COLLECTION]
    old = [
        doc
        async for doc in events.find(
            {"timestamp": {"$lt": cutoff}},
            projection={"userId": 1, "customerId": 1, "name": 1},
            sort=[("timestamp", 1)],
            limit=batch,
        )
    ]
    if not old:
        return 0
    names: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for doc in old:
        names[doc["userId"]][doc["customerId"]].add(doc["name"])
    for user, customers in names.items():
        updates = [
            (
                {"_id": customer},
                {"$pull": {f"{EVENT_TIMES}.{name}": {"$lt": cutoff} for name in sorted(named)}},
            )
            for customer, named in customers.items()
        ]
        await TenantStore(db, user)["customers"].bulk_update(updates)
    deleted = 0
    for ids in in_batches(doc["_id"] for doc in old):
        result = await events.delete_many({"_id": {"$in": ids}, "timestamp": {"$lt": cutoff}})
        deleted += result.deleted_count
    log.info("events.expired", deleted=deleted, before=cutoff.isoformat())
    return deleted
