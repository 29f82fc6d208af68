"""Recipients suppressed after their campaign was planned (an unsubscribe, a bounce, an
operator) are checked again at hand-over, so no message goes to an address on the list:
not the rest of a large campaign still sending, not a retry of failed messages."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from crmd.campaigns import chunks
from crmd.messages import FINAL_RANK, MessageStatus
from crmd.store.documents import Campaign, Doc
from crmd.store.tenant import TenantStore
from crmd.suppressions.entries import suppressed_among

log = structlog.get_logger(__name__)


async def without_suppressed(
    store: TenantStore, campaign: Campaign, todo: list[Doc], fresh: bool
) -> list[Doc]:
    """``todo`` less the recipients now on the list, whose logs become SUPPRESSED with
    the list's reason: new logs for a chunk's entries (``fresh``), updated ones for
    messages sent again. One read of the list for the whole chunk."""
    gone = await suppressed_among(store, (str(d.get("recipient") or "") for d in todo))
    if not gone:
        return todo
    keep = [d for d in todo if d.get("recipient") not in gone]
    held = [d for d in todo if d.get("recipient") in gone]
    now = datetime.now(UTC)
    if fresh:
        campaign_id, vendor = str(campaign.id), campaign.vendor
        logs = [
            chunks.suppressed_log(d, campaign_id, vendor, now, gone[d["recipient"]]) for d in held
        ]
        new, _ = await chunks.insert_logs(store, logs)
        await store.add_to_tally("messages", new)
    else:
        await store["communication_log"].bulk_update(
            [
                (
                    {"_id": d["_id"], "rank": {"$lt": FINAL_RANK}},
                    {"$set": _suppressed(gone[d["recipient"]], now)},
                )
                for d in held
            ]
        )
    log.info("campaign.suppressed_at_handover", campaign_id=str(campaign.id), held=len(held))
    return keep


def _suppressed(why: str, now: datetime) -> Doc:
    return {"status": MessageStatus.SUPPRESSED, "rank": FINAL_RANK, "reason": why, "updatedAt": now}
