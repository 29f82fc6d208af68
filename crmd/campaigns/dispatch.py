"""The dispatch actor's sending: hand each chunk of a campaign's messages (planned by
``crmd.campaigns.planning``) to the vendor within its rate limit.

Safe to repeat after a crash: sending skips every message that already has the vendor's
id or a final status, and hands the vendor crmd's own message id, which vendors treat as
an idempotency key, so no recipient is sent twice.
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
from crmd.campaigns.transitions import move
from crmd.campaigns.vendors import RateLimiter, Vendors, guarded_send
from crmd.plugins.vendor import Accepted, Failed, OutgoingMessage, Retry
from crmd.receipts.status import CANCELLED
from crmd.store.tenant import TenantStore

log = structlog.get_logger(__name__)
VENDOR_BATCH = 100
MAX_ATTEMPTS = 5
MAX_RETRY_WAIT = 30.0


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
