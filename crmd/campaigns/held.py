"""Recipients suppressed after their campaign was planned (an unsubscribe, a bounce, an
operator) are checked again at hand-over, so no message goes to an address on the list:
not the rest of a large campaign still sending, not a retry of failed messages.

Recipients in the holdout are logged HELD_OUT as their chunk is sent, never handed
over: their ``handedAt`` is the time they would have been, from which their orders are
attributed like the messaged recipients' (``crmd.campaigns.attribution``)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import structlog

from crmd.campaigns import chunks
from crmd.messages import FINAL_RANK, MessageStatus
from crmd.store.documents import Campaign, Doc
from crmd.store.tenant import TenantStore
from crmd.suppressions.entries import UNDELIVERABLE, suppressed_among
from crmd.suppressions.erased import ErasedAddresses

log = structlog.get_logger(__name__)


async def without_suppressed(
    store: TenantStore,
    campaign: Campaign,
    todo: list[Doc],
    fresh: bool,
    erased: ErasedAddresses | None = None,
) -> list[Doc]:
    """``todo`` less the recipients now on the list, whose logs become SUPPRESSED with
    the list's reason: new logs for a chunk's entries (``fresh``), updated ones for
    messages sent again. One read of the list for the whole chunk; with ``erased``,
    erased customers' addresses are found in it too."""
    # A transactional message goes to an unsubscribed address, not to a dead one (nor
    # to an erased customer's: ``suppressed_among`` counts those whatever the sources).
    sources = UNDELIVERABLE if campaign.transactional else None
    recipients = (str(d.get("recipient") or "") for d in todo)
    gone = await suppressed_among(store, recipients, sources, erased)
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
                    {"$set": suppressed_fields(gone[d["recipient"]], now)},
                )
                for d in held
            ]
        )
    log.info("campaign.suppressed_at_handover", campaign_id=str(campaign.id), held=len(held))
    return keep


async def without_held_out(store: TenantStore, campaign: Campaign, todo: list[Doc]) -> list[Doc]:
    """``todo`` less the chunk's held-out recipients, whose HELD_OUT logs are written
    (safe to repeat: a log's id is its message's)."""
    keep = [d for d in todo if not d.get("heldOut")]
    if len(keep) == len(todo):
        return todo
    now = datetime.now(UTC)
    campaign_id, vendor = str(campaign.id), campaign.vendor
    logs = [
        msgspec.structs.replace(
            chunks.new_log(d, campaign_id, vendor, MessageStatus.HELD_OUT, 0, now),
            rank=FINAL_RANK,
            handedAt=now,
        )
        for d in todo
        if d.get("heldOut")
    ]
    new, _ = await chunks.insert_logs(store, logs)
    await store.add_to_tally("messages", new)
    return keep


def suppressed_fields(why: str, now: datetime) -> Doc:
    return {"status": MessageStatus.SUPPRESSED, "rank": FINAL_RANK, "reason": why, "updatedAt": now}
