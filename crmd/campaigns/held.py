"""Recipients suppressed after their campaign was planned (an unsubscribe, a bounce, an
operator) are checked again at hand-over, so no message goes to an address on the list:
not the rest of a large campaign still sending, not a retry of failed messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from crmd.campaigns import chunks
from crmd.store.tenant import TenantStore
from crmd.suppressions.entries import suppressed_among

Doc = dict[str, Any]
log = structlog.get_logger(__name__)
REASON = "on the suppression list when it was to be sent"


async def without_suppressed(
    store: TenantStore, campaign: Doc, todo: list[Doc], fresh: bool
) -> list[Doc]:
    """``todo`` less the recipients now on the list, whose logs become SUPPRESSED: new
    logs for a chunk's entries (``fresh``), updated ones for messages sent again. One
    read of the list for the whole chunk."""
    gone = await suppressed_among(store, (str(d.get("recipient") or "") for d in todo))
    if not gone:
        return todo
    keep = [d for d in todo if d.get("recipient") not in gone]
    held = [d for d in todo if d.get("recipient") in gone]
    now = datetime.now(UTC)
    if fresh:
        campaign_id, vendor = str(campaign["_id"]), campaign["vendor"]
        logs = [
            chunks.suppressed_log(d, campaign_id, vendor, now) | {"reason": REASON} for d in held
        ]
        await chunks.insert_logs(store, logs)
    else:
        await store["communication_log"].update_many(
            {"_id": {"$in": [d["_id"] for d in held]}, "rank": {"$lt": chunks.FINAL_RANK}},
            {
                "$set": {
                    "status": chunks.SUPPRESSED,
                    "rank": chunks.FINAL_RANK,
                    "reason": REASON,
                    "updatedAt": now,
                }
            },
        )
    log.info("campaign.suppressed_at_handover", campaign_id=str(campaign["_id"]), held=len(held))
    return keep
