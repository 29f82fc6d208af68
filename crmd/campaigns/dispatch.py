"""The dispatch actor's work: plan a campaign's audience into communication_log, then
hand each chunk of messages to the vendor within its rate limit.

Both steps are safe to repeat after a crash. Planning inserts one log per recipient with
an id derived from (campaign, customer), so a second pass adds nothing. Sending skips
every message that already has the vendor's id or a final status, and hands the vendor
crmd's own message id, which vendors treat as an idempotency key: no recipient is sent
twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from bson import ObjectId

from crmd.campaigns import jobs, stats
from crmd.campaigns.lifecycle import SENDING_STATES, Action, Status
from crmd.campaigns.template import parse_template, render
from crmd.campaigns.transitions import move
from crmd.campaigns.vendors import RateLimiter, Vendors, guarded_send
from crmd.plugins.vendor import Accepted, Failed, OutgoingMessage, Retry
from crmd.receipts.status import CANCELLED
from crmd.segments.query import rule_filter
from crmd.store.numbering import add_to_tally
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new

log = structlog.get_logger(__name__)
PLAN_BATCH = 1000
VENDOR_BATCH = 100
MAX_ATTEMPTS = 5
MAX_RETRY_WAIT = 30.0
CUSTOMER_FIELDS = {
    "name": 1,
    "email": 1,
    "phone": 1,
    "location": 1,
    "spend": 1,
    "visits": 1,
    "attrs": 1,
}


class PlanningError(Exception):
    """A recipient's message could not be prepared; the message names the customer."""


def message_id(campaign: str, customer: str) -> str:
    return hashlib.sha256(f"{campaign}\x00{customer}".encode()).hexdigest()[:24]


def send_key(log: dict[str, Any]) -> str:
    """The message id the vendor sees: the log's id, plus the retry round after a
    retry-failed (vendors dedupe by this id, so a new round needs a new one)."""
    round_ = log.get("round", 0)
    return log["_id"] if not round_ else f"{log['_id']}:r{round_}"


_ROUND = re.compile(r"^(?P<log>[0-9a-f]{24}):r(?P<round>[0-9]{1,6})$")


def parse_send_key(key: str) -> tuple[str, int]:
    """(log id, round) from a message id; anything unexpected is taken as a log id
    (and then simply not found), never an error that could poison a batch."""
    match = _ROUND.match(key)
    return (match.group("log"), int(match.group("round"))) if match else (key, 0)


async def plan(
    store: TenantStore, redis: Any, stream: str, campaign_id: str, vendors: Vendors | None = None
) -> None:
    """Write one PENDING log per recipient (with its rendered message) and queue the
    send jobs; the audience is fixed here. A cancel or a pause stops it between batches
    (a cancel also marks what was written CANCELLED)."""
    campaigns = store["campaigns"]
    campaign = await move(campaigns, ObjectId(campaign_id), Action.PLAN)
    if campaign is None:
        return  # not queued any more: cancelled, paused, or planned by another process
    parts = parse_template(campaign["message"])
    rate = vendors.get(campaign["vendor"]).rate_limit() if vendors else 1000.0
    chunk = jobs.chunk_size(rate)
    query = rule_filter(campaign["rule"], campaign["ruleNow"].replace(tzinfo=UTC))
    now = datetime.now(UTC)
    batch: list[dict[str, Any]] = []
    seq = 0
    async for customer in store["customers"].find(
        query, projection=CUSTOMER_FIELDS, batch_size=PLAN_BATCH
    ):
        seq += 1
        try:
            batch.append(_log(campaign, customer, parts, now, seq))
        except Exception as exc:  # a bug, but one that names whom it concerns
            raise PlanningError(
                f"customer {customer.get('_id')}: {type(exc).__name__}: {exc}"[:500]
            ) from exc
        if len(batch) >= PLAN_BATCH:
            await _write_logs(store, redis, stream, campaign_id, batch, chunk)
            batch = []
            if not await _still_planning(store, campaign["_id"]):
                return
    await _write_logs(store, redis, stream, campaign_id, batch, chunk)
    size = await store["communication_log"].count_documents({"campaignId": campaign_id})
    planned = await move(
        campaigns,
        campaign["_id"],
        Action.PLANNED,
        audienceSize=size,
        plannedAt=now,
        lastSeq=seq,
        **{"stats.pending": size},
    )
    if planned is None:
        await _still_planning(store, campaign["_id"])  # a cancel: sweep what was written
        return
    log.info("campaign.planned", campaign_id=campaign_id, audience=size)
    # Other processes may have sent every chunk while this one was still planning.
    await mark_sent_if_done(store, campaign_id)


async def _still_planning(store: TenantStore, campaign_id: ObjectId) -> bool:
    """False once the campaign was paused or cancelled; a cancelled one has its
    unsent messages marked CANCELLED here (after the last of them was written)."""
    doc = await store["campaigns"].find_one({"_id": campaign_id}, projection={"status": 1})
    status = doc["status"] if doc else Status.CANCELLED
    if status == Status.CANCELLED:
        await cancel_unsent(store, str(campaign_id))
    return status == Status.PLANNING


async def cancel_unsent(store: TenantStore, campaign_id: str) -> int:
    """Every message of a cancelled campaign that the vendor was not handed becomes
    CANCELLED, and the stats say so. Safe to repeat: the route, the planner and the
    sender all call it, so whichever writes last also sweeps last."""
    swept = await store["communication_log"].update_many(
        {"campaignId": campaign_id, "status": "PENDING", "vendorMessageId": None},
        # The rank stays 0: should the vendor have taken one after all (a batch in
        # flight as the cancel came), its receipt still lands.
        {"$set": {"status": CANCELLED, "updatedAt": datetime.now(UTC)}},
    )
    if swept.modified_count:
        await stats.refresh(store, campaign_id)
    return swept.modified_count


def _log(
    campaign: dict[str, Any], customer: dict[str, Any], parts: Any, now: datetime, seq: int
) -> dict[str, Any]:
    campaign_id = str(campaign["_id"])
    return {
        "_id": message_id(campaign_id, customer["_id"]),
        "campaignId": campaign_id,
        "seq": seq,  # the recipient's place in the campaign: log pages are ranges of it
        "customerId": customer["_id"],
        "recipient": customer.get("email", ""),
        "phone": customer.get("phone", ""),
        "message": render(parts, customer),
        "vendor": campaign["vendor"],
        "status": "PENDING",
        "rank": 0,
        "attempts": 0,
        "vendorMessageId": None,
        "createdAt": now,
        "updatedAt": now,
    }


async def _write_logs(
    store: TenantStore,
    redis: Any,
    stream: str,
    campaign_id: str,
    batch: list[dict[str, Any]],
    chunk: int,
) -> None:
    if not batch:
        return
    planned_before = await insert_new(store["communication_log"].insert_many(batch))  # a crash
    await add_to_tally(store.db, store.user_id, "messages", len(batch) - len(planned_before))
    ids = [d["_id"] for d in batch]
    await jobs.publish(redis, stream, jobs.send_jobs(campaign_id, store.user_id, ids, chunk))


async def send_chunk(
    store: TenantStore, vendors: Vendors, limiters: dict[str, RateLimiter], job: jobs.DispatchJob
) -> None:
    """Hand one chunk to the vendor: unsent messages only, in batches within its rate,
    retrying what the vendor asks to retry up to MAX_ATTEMPTS."""
    campaign = await store["campaigns"].find_one({"_id": ObjectId(job.campaign)})
    if campaign is None or campaign["status"] not in SENDING_STATES:
        if campaign is not None and campaign["status"] == Status.CANCELLED:
            await cancel_unsent(store, job.campaign)
        return  # paused or cancelled: resume re-queues what is unsent
    vendor = vendors.get(campaign["vendor"])
    limiter = limiters.setdefault(vendor.name, RateLimiter(vendor.rate_limit()))
    logs = store["communication_log"]
    todo = await logs.by_ids(
        job.ids,
        {"status": "PENDING", "vendorMessageId": None},
        {"recipient": 1, "phone": 1, "message": 1, "attempts": 1, "round": 1},
    )
    while todo:
        retry: list[dict[str, Any]] = []
        wait = 0.0
        size = limiter.batch_size(VENDOR_BATCH)
        for start in range(0, len(todo), size):
            if not await _still_sending(store, campaign["_id"]):
                return  # paused or cancelled mid-chunk: resume re-queues the rest
            batch = todo[start : start + size]
            await limiter.take(len(batch))
            messages = [
                OutgoingMessage(
                    send_key(d), d.get("recipient", ""), d.get("phone", ""), d["message"]
                )
                for d in batch
            ]
            results = await guarded_send(vendor, messages)
            by_id = {send_key(d): d for d in batch}
            again, wait_for = await _record(store, by_id, results)
            retry += again
            wait = max(wait, wait_for)
        todo = retry
        if todo:
            await asyncio.sleep(min(wait, MAX_RETRY_WAIT))


async def _still_sending(store: TenantStore, campaign_id: ObjectId) -> bool:
    doc = await store["campaigns"].find_one({"_id": campaign_id}, projection={"status": 1})
    if doc is not None and doc["status"] == Status.CANCELLED:
        await cancel_unsent(store, str(campaign_id))
    return doc is not None and doc["status"] in SENDING_STATES


async def _record(
    store: TenantStore, by_id: dict[str, dict[str, Any]], results: Sequence[Any]
) -> tuple[list[dict[str, Any]], float]:
    now = datetime.now(UTC)
    updates = []
    retry: list[dict[str, Any]] = []
    wait = 0.0
    for result in results:
        doc = by_id.get(result.message_id)
        if doc is None:
            continue
        attempts = doc.get("attempts", 0) + 1
        if isinstance(result, Accepted):
            # PENDING again if a cancel swept it while the batch was with the vendor:
            # the vendor has it, and its receipt is awaited.
            updates.append(
                (
                    {"_id": doc["_id"], "vendorMessageId": None},
                    {
                        "$set": {
                            "status": "PENDING",
                            "vendorMessageId": result.vendor_message_id,
                            "attempts": attempts,
                            "handedAt": now,
                            "updatedAt": now,
                        }
                    },
                )
            )
        elif isinstance(result, Failed) or attempts >= MAX_ATTEMPTS:
            reason = (
                result.reason
                if isinstance(result, Failed)
                else (f"gave up after {attempts} attempts: {result.reason}")
            )
            # gaveUp: the vendor may have taken it after all; a retry keeps its id.
            updates.append(
                (
                    {"_id": doc["_id"], "rank": {"$lt": 5}},
                    {
                        "$set": {
                            "status": "FAILED",
                            "rank": 5,
                            "reason": reason,
                            "attempts": attempts,
                            "updatedAt": now,
                            "times.FAILED": now,
                            "gaveUp": not isinstance(result, Failed),
                        }
                    },
                )
            )
        elif isinstance(result, Retry):
            updates.append(
                ({"_id": doc["_id"]}, {"$set": {"attempts": attempts, "updatedAt": now}})
            )
            retry.append({**doc, "attempts": attempts})
            wait = max(wait, result.after_seconds * 2 ** (attempts - 1))
    if updates:
        await store["communication_log"].bulk_update(updates)
    return retry, wait


async def mark_sent_if_done(store: TenantStore, campaign_id: str) -> None:
    """``sent`` once every recipient is with the vendor (or failed for good), and at once
    ``completed`` when no receipt is awaited (an empty audience, every message failed)."""
    logs = store["communication_log"]
    unsent = await logs.count_documents(
        {"campaignId": campaign_id, "status": "PENDING", "vendorMessageId": None}
    )
    if unsent:
        return
    campaigns = store["campaigns"]
    now = datetime.now(UTC)
    sent = await move(campaigns, ObjectId(campaign_id), Action.HANDED_OVER, sentAt=now)
    if sent is None:
        return
    awaited = await logs.count_documents({"campaignId": campaign_id, "status": "PENDING"})
    if not awaited:
        await stats.refresh(store, campaign_id)
