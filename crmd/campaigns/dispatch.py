"""The dispatch actor's sending: hand each chunk of a campaign's messages (planned by
``crmd.campaigns.planning``) to the vendor within its rate limit, and record each
recipient once: the log is written when the vendor has taken the message (with the
vendor's id; SENT already when the vendor will report nothing more) or refused it for
good.

Safe to repeat after a crash: sending skips every recipient that already has a log (or,
for messages sent again by retry-failed, the vendor's id or a final status), and hands
the vendor crmd's own message id, which vendors treat as an idempotency key, so a
message handed over twice is the same message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from bson import ObjectId

from crmd.campaigns import chunks, jobs, stats
from crmd.campaigns.cap import FrequencyCap, without_capped
from crmd.campaigns.compose import Composer
from crmd.campaigns.handoff import Handoff
from crmd.campaigns.held import without_held_out, without_suppressed
from crmd.campaigns.lifecycle import SENDING_STATES, Action, Status
from crmd.campaigns.transitions import move
from crmd.campaigns.vendors import RateLimiter, RateLimits, Vendors, guarded_send
from crmd.campaigns.winner import decide_at
from crmd.messages import MessageStatus, send_key
from crmd.plugins.vendor import Accepted, Failed, Retry, Vendor, VendorMisconfigured
from crmd.store.documents import (
    Campaign,
    CampaignProgress,
    CampaignState,
    Doc,
    decode,
    projection,
)
from crmd.store.tenant import TenantStore
from crmd.suppressions.links import UnsubscribeLinks
from crmd.verp import ReturnPaths

log = structlog.get_logger(__name__)
VENDOR_BATCH = 100
MAX_ATTEMPTS = 5
MAX_RETRY_WAIT = 30.0


async def cancel_unsent(store: TenantStore, campaign_id: str) -> int:
    """Every message of a cancelled campaign that the vendor was not handed becomes
    CANCELLED, and the stats say so. Safe to repeat: the route, the planner and the
    sender all call it, so whichever writes last also sweeps last."""
    now = datetime.now(UTC)
    swept = await chunks.cancel_unsent(store, campaign_id, now)
    # Messages queued again by retry-failed (and campaigns planned before chunks).
    legacy = await store["communication_log"].update_many(
        {"campaignId": campaign_id, "status": MessageStatus.PENDING, "vendorMessageId": None},
        # The rank stays 0: should the vendor have taken one after all (a batch in
        # flight as the cancel came), its receipt still lands.
        {"$set": {"status": MessageStatus.CANCELLED, "updatedAt": now}},
    )
    swept += legacy.modified_count
    # Even with nothing swept while the stats still say some are pending: cancelled
    # before it was planned, the audience counted at creation is pending in them until
    # a recount says none is. (Not on every call: each leftover send job makes one.)
    if swept or await store["campaigns"].find_one(
        {"_id": ObjectId(campaign_id), "stats.pending": {"$gt": 0}}, projection={"_id": 1}
    ):
        await stats.refresh(store, campaign_id)
    return swept


async def send_chunk(
    store: TenantStore,
    vendors: Vendors,
    limits: RateLimits,
    job: jobs.DispatchJob,
    deliveries: int = 1,
    links: UnsubscribeLinks | None = None,
    return_paths: ReturnPaths | None = None,
    cap: FrequencyCap | None = None,
) -> int:
    """Hand one chunk to the vendor: unsent messages only, in batches within its rate,
    retrying what the vendor asks to retry up to MAX_ATTEMPTS. A chunk's attempts are
    counted in memory, and each earlier delivery of its job counts as one (a chunk whose
    retries outlast the handler's deadline would otherwise start again from none, for
    ever). Returns how many messages were recorded SENT at hand-over or HELD_OUT: no
    receipt will have their campaign's stats recounted."""
    found = await store["campaigns"].find_one({"_id": ObjectId(job.campaign)})
    campaign = decode(found, Campaign) if found else None
    if campaign is None or campaign.status not in SENDING_STATES:
        if campaign is not None and campaign.status == Status.CANCELLED:
            await cancel_unsent(store, job.campaign)
        return 0  # paused or cancelled: resume re-queues what is unsent
    vendor = vendors.get(campaign.vendor)
    limiter = limits.of(vendor)
    if job.chunk:
        chunk = await chunks.read(store, job.chunk)
        if chunk is None:
            return 0  # done already: a copy of the job, after a crash
        tried = min(deliveries - 1, MAX_ATTEMPTS - 1)
        todo = [{**e, "attempts": tried} for e in await chunks.unsent(store, chunk)]
    else:
        todo = await store["communication_log"].by_ids(
            job.ids,
            {"status": MessageStatus.PENDING, "vendorMessageId": None},
            {"recipient": 1, "phone": 1, "message": 1, "attempts": 1, "round": 1}
            | {"customerId": 1, "values": 1, "variant": 1},
        )
    erased = links.erased if links is not None else None
    todo = await without_suppressed(store, campaign, todo, bool(job.chunk), erased)
    handoff = Handoff(store, job.campaign, campaign.vendor, fresh=bool(job.chunk))
    planned = len(todo)
    todo = await without_held_out(store, campaign, todo)
    handoff.sent += planned - len(todo)  # HELD_OUT: no receipt will recount them either
    # After the holdout: a held-out customer is sent nothing, so uses none of the cap.
    todo = await without_capped(store, cap, campaign, todo, bool(job.chunk), campaign.transactional)
    composer = Composer(campaign, store.user_id, links, return_paths)
    try:
        finished = await _hand_over(store, vendor, limiter, handoff, todo, composer)
    except VendorMisconfigured as exc:
        await stop_misconfigured(store, job.campaign, vendor.name, exc)
        return handoff.sent
    finally:
        await handoff.count()
    if finished and job.chunk:
        await chunks.mark_done(store, job.chunk)
    return handoff.sent


async def _hand_over(
    store: TenantStore,
    vendor: Vendor,
    limiter: RateLimiter,
    handoff: Handoff,
    todo: list[Doc],
    composer: Composer,
) -> bool:
    """Hand ``todo`` over in batches, retrying what the vendor asks to; False when the
    campaign was paused or cancelled on the way."""
    while todo:
        retry: list[Doc] = []
        wait = 0.0
        size = limiter.batch_size(VENDOR_BATCH)
        for start in range(0, len(todo), size):
            if not await _still_sending(store, ObjectId(handoff.campaign_id)):
                return False  # resume re-queues the rest
            batch = todo[start : start + size]
            await limiter.take(len(batch))
            messages = [composer.message(send_key(d), d) for d in batch]
            results = await guarded_send(vendor, messages)
            by_id = {send_key(d): d for d in batch}
            again, wait_for = await _record(handoff, by_id, results)
            retry += again
            wait = max(wait, wait_for)
        todo = retry
        if todo:
            await asyncio.sleep(min(wait, MAX_RETRY_WAIT))
    return True


async def stop_misconfigured(
    store: TenantStore, campaign_id: str, vendor: str, exc: VendorMisconfigured
) -> None:
    """A vendor that cannot send until its settings change (a wrong password) puts the
    campaign in ``error``, the reason naming the vendor: retrying would only repeat
    the refusal. What was handed over before stays recorded; the chunk stays open."""
    reason = f"the {vendor} vendor cannot send: {exc}"[:1000]
    log.error("campaign.vendor_misconfigured", campaign=campaign_id, vendor=vendor, error=reason)
    await move(store["campaigns"], ObjectId(campaign_id), Action.FAIL, reason=reason)


async def _still_sending(store: TenantStore, campaign_id: ObjectId) -> bool:
    found = await store["campaigns"].find_one(
        {"_id": campaign_id}, projection=projection(CampaignState)
    )
    status = decode(found, CampaignState).status if found else None
    if status == Status.CANCELLED:
        await cancel_unsent(store, str(campaign_id))
    return status in SENDING_STATES


async def _record(
    handoff: Handoff, by_id: dict[str, Doc], results: Sequence[Any]
) -> tuple[list[Doc], float]:
    """Write what the vendor answered for one batch; returns the messages to try again
    and how long to wait first."""
    retry: list[Doc] = []
    wait = 0.0
    for result in results:
        doc = by_id.get(result.message_id)
        if doc is None:
            continue
        attempts = doc.get("attempts", 0) + 1
        if isinstance(result, Accepted):
            handoff.accepted(doc, result.vendor_message_id, attempts, result.sent)
        elif isinstance(result, Failed) or attempts >= MAX_ATTEMPTS:
            reason = (
                result.reason
                if isinstance(result, Failed)
                else (f"gave up after {attempts} attempts: {result.reason}")
            )
            handoff.failed(doc, reason, attempts, gave_up=not isinstance(result, Failed))
        elif isinstance(result, Retry):
            handoff.retried(doc, attempts)
            retry.append({**doc, "attempts": attempts})
            wait = max(wait, result.after_seconds * 2 ** (attempts - 1))
    await handoff.write()
    return retry, wait


RESENT = {"$set": {"resent": True}}
"""Marks a campaign some of whose logs were set to be sent again (retry-failed): those
wait as logs, PENDING with no vendor id, where a chunked campaign's never do."""


async def mark_sent_if_done(store: TenantStore, campaign_id: str) -> None:
    """``sent`` once every recipient is with the vendor (or failed for good), and at once
    ``completed`` when no receipt is awaited (an empty audience, every message failed or
    recorded SENT at hand-over). Cheap until it is true: the planned campaign's open
    chunks are counted first, and the logs (all its PENDING ones read) only when some
    wait there to be sent."""
    campaigns = store["campaigns"]
    found = await campaigns.find_one(
        {"_id": ObjectId(campaign_id)}, projection=projection(CampaignProgress)
    )
    doc = decode(found, CampaignProgress) if found else None
    if doc is None or doc.status not in SENDING_STATES or doc.plannedAt is None:
        return  # not planned yet: planning checks once it is done
    if await store["send_chunks"].count_documents({"campaignId": campaign_id, "done": False}):
        return
    logs = store["communication_log"]
    if not doc.chunked or doc.resent:
        unsent = await logs.count_documents(
            {"campaignId": campaign_id, "status": MessageStatus.PENDING, "vendorMessageId": None}
        )
        if unsent:
            return
    now = datetime.now(UTC)
    deciding = decide_at(doc, now)
    if deciding is not None:  # an A/B test's share: the winner goes to the rest later
        await move(campaigns, ObjectId(campaign_id), Action.TESTED, decideAt=deciding)
        return
    sent = await move(campaigns, ObjectId(campaign_id), Action.HANDED_OVER, sentAt=now)
    if sent is None:
        return
    awaited = await logs.count_documents(
        {"campaignId": campaign_id, "status": MessageStatus.PENDING}
    )
    if not awaited:
        await stats.refresh(store, campaign_id)
