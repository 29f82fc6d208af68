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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from bson import ObjectId
from msgspec.structs import replace

from crmd.campaigns import chunks, jobs, stats
from crmd.campaigns.cap import FrequencyCap, without_capped
from crmd.campaigns.compose import Composer
from crmd.campaigns.held import without_held_out, without_suppressed
from crmd.campaigns.lifecycle import SENDING_STATES, Action, Status
from crmd.campaigns.transitions import move
from crmd.campaigns.vendors import RateLimiter, RateLimits, Vendors, guarded_send
from crmd.campaigns.winner import decide_at
from crmd.messages import FINAL_RANK, RANK, MessageStatus, send_key
from crmd.plugins.vendor import Accepted, Failed, Retry, Vendor, VendorMisconfigured
from crmd.store.documents import (
    Campaign,
    CampaignProgress,
    CampaignState,
    Doc,
    MessageLog,
    decode,
    projection,
)
from crmd.store.tenant import TenantStore
from crmd.suppressions.entries import Entry, suppress
from crmd.suppressions.failures import dead_in, hard_failure
from crmd.suppressions.links import UnsubscribeLinks
from crmd.verp import ReturnPaths

log = structlog.get_logger(__name__)
VENDOR_BATCH = 100
MAX_ATTEMPTS = 5
MAX_RETRY_WAIT = 30.0
FAILED_RANK = RANK[MessageStatus.FAILED]


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


@dataclass
class Handoff:
    """One send job's messages on their way to the vendor. ``fresh`` messages come from
    a chunk and have no log yet; the others are logs sent again."""

    store: TenantStore
    campaign_id: str
    vendor: str
    fresh: bool
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    inserts: list[MessageLog] = field(default_factory=list)
    updates: list[tuple[Doc, Doc]] = field(default_factory=list)
    logged: int = 0
    """Logs this handoff wrote, for the user's tally (added once, at the end: a crash
    before leaves it short until the clock recounts it)."""
    dead: list[Entry] = field(default_factory=list)
    """Addresses the vendor refused for good (``hard_failure``): to be suppressed."""
    sent: int = 0
    """Messages this handoff recorded SENT at hand-over (``Accepted.sent``)."""
    answered: int = 0
    """Messages the vendor answered since the last write (for ``dead_in``)."""
    handed: list[tuple[str, Doc]] = field(default_factory=list)
    """Logs (existing ones) handed over since the last write, with what was handed."""

    def accepted(self, doc: Doc, vendor_id: str, attempts: int, sent: bool = False) -> None:
        """The vendor took it: PENDING until its receipt, or SENT at once when the
        vendor will report nothing more (``Accepted.sent``), in the same write."""
        handed = self._handed(vendor_id, attempts, sent)
        self.sent += int(sent)
        self.answered += 1
        if self.fresh:
            self.inserts.append(
                replace(self._log(doc, handed["status"], attempts), **_nested(handed))
            )
            return
        self.updates.append(_handed_over(doc["_id"], handed))
        self.handed.append((doc["_id"], handed))

    def failed(self, doc: Doc, reason: str, attempts: int, gave_up: bool) -> None:
        # gaveUp: the vendor may have taken it after all; a retry keeps its id.
        self.answered += 1
        failure = {
            "reason": reason,
            "attempts": attempts,
            "updatedAt": self.now,
            "times": {MessageStatus.FAILED: self.now},
            "gaveUp": gave_up,
        }
        if not gave_up and doc.get("recipient") and hard_failure(reason):
            campaign, customer = self.campaign_id, doc.get("customerId")
            self.dead.append(Entry(doc["recipient"], reason, "failure", campaign, customer))
        if self.fresh:
            log = self._log(doc, MessageStatus.FAILED, attempts)
            self.inserts.append(replace(log, **failure, rank=FAILED_RANK))
            return
        failure.pop("times")
        self.updates.append(
            (
                {"_id": doc["_id"], "rank": {"$lt": FAILED_RANK}},
                {
                    "$set": {
                        "status": MessageStatus.FAILED,
                        "rank": FAILED_RANK,
                        f"times.{MessageStatus.FAILED}": self.now,
                        **failure,
                    }
                },
            )
        )

    def retried(self, doc: Doc, attempts: int) -> None:
        self.answered += 1
        if not self.fresh:  # a chunk's count lives in memory: a crash starts it again
            self.updates.append(
                ({"_id": doc["_id"]}, {"$set": {"attempts": attempts, "updatedAt": self.now}})
            )

    async def count(self) -> None:
        await self.store.add_to_tally("messages", self.logged)
        self.logged = 0

    async def write(self) -> None:
        dead = dead_in(self.answered, self.dead)
        if dead:  # before the logs: a crash in between sends again, and fails again
            await suppress(self.store, dead)
        new, there = await chunks.insert_logs(self.store, self.inserts)
        self.logged += new
        # Logged already: by this chunk before a crash (nothing to add), or CANCELLED by
        # a cancel that came while the batch was with the vendor (now it is handed).
        for log in there:
            if log.vendorMessageId is not None:
                sent = log.status == MessageStatus.SENT
                handed = self._handed(log.vendorMessageId, log.attempts, sent)
                self.updates.append(_handed_over(log.id, handed))
                self.handed.append((log.id, handed))
        if self.updates:
            done = await self.store["communication_log"].bulk_update(self.updates)
            if self.handed and done.matched_count < len(self.updates):
                await self._receipt_came_first()
        self.inserts, self.updates, self.dead, self.answered = [], [], [], 0
        self.handed = []
        self.now = datetime.now(UTC)

    async def _receipt_came_first(self) -> None:
        """A vendor that echoes crmd's id may post a message's receipt before this
        write: the log has risen past PENDING, and the hand-over left it alone. It
        keeps what the receipt said and gains the vendor's id (later receipts may name
        the message by it). Not a log that failed at hand-over (``gaveUp`` is set):
        retry-failed sends again only what has no vendor id."""
        await self.store["communication_log"].bulk_update(
            [
                (
                    {
                        "_id": log_id,
                        "vendorMessageId": None,
                        "rank": {"$gt": 0, "$lt": FINAL_RANK},
                        "gaveUp": {"$exists": False},
                    },
                    {
                        "$set": {
                            "vendorMessageId": handed["vendorMessageId"],
                            "attempts": handed["attempts"],
                            "handedAt": handed["handedAt"],
                        }
                    },
                )
                for log_id, handed in self.handed
            ]
        )

    def _handed(self, vendor_id: str, attempts: int, sent: bool) -> Doc:
        """The fields a handover sets (``$set`` style). SENT looks exactly as if its
        receipt had been applied (``receipts.status``): its rank and first-seen time."""
        handed = {
            "status": MessageStatus.PENDING,
            "vendorMessageId": vendor_id,
            "attempts": attempts,
            "handedAt": self.now,
            "updatedAt": self.now,
        }
        if sent:
            handed |= {
                "status": MessageStatus.SENT,
                "rank": RANK[MessageStatus.SENT],
                f"times.{MessageStatus.SENT}": self.now,
            }
        return handed

    def _log(self, entry: Doc, status: MessageStatus, attempts: int) -> MessageLog:
        return chunks.new_log(entry, self.campaign_id, self.vendor, status, attempts, self.now)


def _nested(fields: Doc) -> Doc:
    """``$set`` fields as a document to insert: ``times.SENT`` becomes ``times: {SENT}``."""
    doc: Doc = {}
    for key, value in fields.items():
        outer, _, inner = key.partition(".")
        if inner:
            doc.setdefault(outer, {})[inner] = value
        else:
            doc[key] = value
    return doc


def _handed_over(log_id: str, handed: Doc) -> tuple[Doc, Doc]:
    """The update that records a handover on a log that exists already: PENDING (or
    SENT) again if a cancel swept it while the batch was with the vendor (the vendor has
    it). Only a rank-0 log without the vendor's id: one that failed for good or got a
    receipt since (another consumer's) keeps what it knows. A rank-0 log has no
    first-seen time yet (retry-failed clears them), so SENT's is set, not merged."""
    return ({"_id": log_id, "vendorMessageId": None, "rank": 0}, {"$set": handed})


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
