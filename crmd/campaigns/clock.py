"""What happens to campaigns because time passed: the clock actor runs these.

The scans over every tenant's campaigns read ``userId`` and ``_id`` as a dict: a
maintenance pass over the database, not a read of one tenant's campaign.

A scheduled campaign whose time has come is queued for planning; a sent campaign whose
receipt window has closed is completed, its still-PENDING messages marked UNKNOWN (a
late receipt still lands: UNKNOWN ranks below every real status). A campaign left
queued or planning with no plan job (crmd died between saving it and queueing the job)
has its job queued again. Each change is a conditional update, so several crmd
processes can run clocks at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.campaigns import jobs, stats
from crmd.campaigns.dispatch import cancel_unsent
from crmd.campaigns.lifecycle import Action, Status
from crmd.campaigns.transitions import move
from crmd.messages import MessageStatus
from crmd.store.documents import CampaignProgress, decode, projection
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


async def recover_stranded(
    db: AsyncDatabase[dict[str, Any]],
    redis: Redis,
    stream: str,
    older_than_seconds: int,
    now: datetime,
) -> int:
    """Queue again the plan job of each campaign left queued or planning without one;
    returns how many were queued.

    A campaign is looked at once it has not moved (``updatedAt``: each plan job moves it
    as it starts its stretch) for ``older_than_seconds``, and then at most once per that
    bound (``strandCheckedAt``, set by a conditional update: of several clocks, one
    looks). Its job is queued again only when none for it waits in the dispatch stream
    or in a consumer's hands, and it starts at the stretch planning is at, so that a
    copy of a job still alive after all finds its stretch done. Planning twice adds no
    message (``crmd.campaigns.planning``)."""
    bound = now - timedelta(seconds=older_than_seconds)
    stranded = {
        "status": {"$in": [Status.QUEUED.value, Status.PLANNING.value]},
        "updatedAt": {"$lte": bound},
        "$or": [{"strandCheckedAt": None}, {"strandCheckedAt": {"$lte": bound}}],
    }
    waiting: set[str] | None = None  # read from the stream once, when first needed
    recovered = 0
    async for found in db.campaigns.find(stranded, projection={"userId": 1}):
        store = TenantStore(db, found["userId"])
        moved = await store["campaigns"].find_one_and_update(
            {**stranded, "_id": found["_id"]},
            {"$set": {"strandCheckedAt": now}},
            projection=projection(CampaignProgress),
            return_document=ReturnDocument.AFTER,
        )
        if moved is None:
            continue  # another clock looks, or it moved on
        campaign = decode(moved, CampaignProgress)
        if waiting is None:
            waiting = await jobs.awaiting_plan(redis, stream)
        campaign_id = str(campaign.id)
        if campaign_id in waiting:
            continue  # only waiting its turn behind other jobs
        start = campaign.planNext
        job = jobs.DispatchJob("plan", campaign_id, store.user_id, start=start)
        await jobs.publish(redis, stream, [job])
        recovered += 1
        log.warning(
            "campaign.plan_requeued",
            campaign_id=campaign_id,
            status=campaign.status,
            start=start,
        )
    return recovered


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
        {
            "campaignId": campaign_id,
            "status": MessageStatus.PENDING,
            "vendorMessageId": {"$ne": None},
        },
        {"$set": {"status": MessageStatus.UNKNOWN, "updatedAt": now}},
    )
