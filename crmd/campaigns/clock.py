"""What happens to campaigns because time passed: the clock actor runs these.

A scheduled campaign whose time has come is queued for planning; a sent campaign whose
receipt window has closed is completed, its still-PENDING messages marked UNKNOWN (a
late receipt still lands: UNKNOWN ranks below every real status). Each change is a
conditional update, so several crmd processes can run clocks at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.campaigns import jobs, stats
from crmd.campaigns.dispatch import cancel_unsent
from crmd.campaigns.lifecycle import Action, Status
from crmd.campaigns.transitions import move
from crmd.receipts.status import UNKNOWN
from crmd.store.tenant import TenantStore

log = structlog.get_logger(__name__)


async def start_due_campaigns(
    db: AsyncDatabase[dict[str, Any]], redis: Redis, stream: str, now: datetime
) -> int:
    started = 0
    due = {"status": Status.SCHEDULED.value, "scheduledAt": {"$lte": now}}
    async for campaign in db.campaigns.find(due, projection={"userId": 1}):
        store = TenantStore(db, campaign["userId"])
        if await move(store["campaigns"], campaign["_id"], Action.START) is None:
            continue  # another clock, a cancel: not ours to start
        job = jobs.DispatchJob("plan", str(campaign["_id"]), store.user_id)
        await jobs.publish(redis, stream, [job])
        started += 1
    return started


async def close_receipt_windows(
    db: AsyncDatabase[dict[str, Any]], window_seconds: int, now: datetime
) -> int:
    """Sent campaigns whose window has closed are completed; cancelled ones have their
    handed-over messages settled the same way (once: ``receiptsClosedAt`` marks it)."""
    window = timedelta(seconds=window_seconds)
    closed = 0
    over = {"status": Status.SENT.value, "sentAt": {"$lte": now - window}}
    cancelled = {
        "status": Status.CANCELLED.value,
        "receiptsClosedAt": None,
        "updatedAt": {"$lte": now - window},
    }
    for query in (over, cancelled):
        async for campaign in db.campaigns.find(query, projection={"userId": 1}):
            store = TenantStore(db, campaign["userId"])
            await _unknown_when_late(store, str(campaign["_id"]), now)
            if query is cancelled:
                # Swept when it was cancelled, unless crmd died before the sweep was
                # queued: then here, at the latest.
                await cancel_unsent(store, str(campaign["_id"]))
                await store["campaigns"].update_one(
                    {"_id": campaign["_id"]}, {"$set": {"receiptsClosedAt": now}}
                )
            await stats.refresh(store, str(campaign["_id"]))  # completes a sent one
            closed += 1
            log.info("campaign.receipt_window_closed", campaign_id=str(campaign["_id"]))
    return closed


async def _unknown_when_late(store: TenantStore, campaign_id: str, now: datetime) -> None:
    await store["communication_log"].update_many(
        # Only messages the vendor took: one reset by retry-failed just now is not late,
        # it is about to be sent.
        {"campaignId": campaign_id, "status": "PENDING", "vendorMessageId": {"$ne": None}},
        {"$set": {"status": UNKNOWN, "updatedAt": now}},
    )
