"""The receipts actor's work: a batch of receipt events into communication_log, then
the affected campaigns' stats recounted.

A receipt names a message by crmd's id, the vendor's id, or (the original project's
way) campaign and customer. Named by crmd's id, as vendors that echo it do, a receipt
costs one conditional update and nothing else: the id names the campaign
(``crmd.messages.message_id``), the update matches only that vendor's log of that round, and
it does in one statement what precedence says (``status.as_pipeline``). When some
receipt of a batch matches nothing (a message crmd has not logged yet, a stale round,
another vendor's id) or names its message another way, the batch takes the way that
reads each log first: the tenant and the campaign then come from crmd's own log of that
message, never from the payload. Applying is idempotent (the status rank only rises;
first-seen times only fall), so duplicates, reordering, redelivery after a crash and
the second way after the first all end in the same state.

A BOUNCED receipt, a COMPLAINED one (source ``complaint``, at once), or a FAILED one
whose reason says the address is dead (``suppressions.failures``), puts the address on
its tenant's suppression list; SOFT_BOUNCED ones are counted (``receipts.soft``); those
receipts (rare) have their logs read for the address, whichever way they were applied.
When every receipt of a batch (three or more) is a FAILED one with the same words, none
is suppressed: that is a relay refusing everyone (``failures.dead_in``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from bson import ObjectId
from pymongo import UpdateOne, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase

from crmd.campaigns import stats
from crmd.messages import (
    RANK,
    MessageStatus,
    campaign_of,
    is_test_send,
    legacy_message_id,
    message_id,
    parse_send_key,
)
from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts.batch import ReceiptBatch
from crmd.receipts.soft import DEFAULT_RULE, SoftBounceRule, count_soft_bounces
from crmd.receipts.status import as_pipeline, as_updates
from crmd.store.documents import Doc, ReceiptTarget, decode, projection
from crmd.store.reads import find_in, in_batches
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new
from crmd.suppressions.entries import Entry, Source, suppress
from crmd.suppressions.failures import dead_in, hard_failure
from crmd.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)
LOG_FIELDS = projection(ReceiptTarget)


Reporters = Mapping[str, Sequence[str]]
"""Who reported a batch → the other vendors whose messages it may name
(``ReceiptBatch.reports_for``)."""


def may_name(reporters: Reporters, vendor: str) -> list[str | None]:
    """The vendors of the logs ``vendor``'s events may name: its own, those it reports
    for, and none (a log not yet handed over)."""
    return [vendor, *reporters.get(vendor, ()), None]


async def find_logs(
    db: AsyncDatabase[Doc],
    events: Sequence[tuple[str, ReceiptEvent]],
    reporters: Reporters | None = None,
) -> dict[tuple[str, str], ReceiptTarget]:
    """Each event's log, keyed by (vendor, event id). These lookups are by ids crmd
    issued, across tenants on purpose: the log found decides the tenant."""
    reporters = reporters or {}
    logs = db.communication_log
    found: dict[tuple[str, str], ReceiptTarget] = {}
    ours = {parse_send_key(e.message_id)[0] for _, e in events if e.message_id}
    by_id = {d["_id"]: d async for d in find_in(logs, "_id", sorted(ours), None, LOG_FIELDS)}
    theirs: dict[str, set[str]] = defaultdict(set)
    for vendor, event in events:
        if not event.message_id and event.vendor_message_id:
            theirs[vendor].add(event.vendor_message_id)
    by_vendor_id: dict[tuple[str, str], Doc] = {}
    for vendor, ids in theirs.items():
        whose = {"vendor": {"$in": may_name(reporters, vendor)[:-1]}}
        async for match in find_in(logs, "vendorMessageId", sorted(ids), whose, LOG_FIELDS):
            by_vendor_id[(vendor, match["vendorMessageId"])] = match
    for vendor, event in events:
        doc: Doc | None = None
        if event.message_id:
            log_id, round_ = parse_send_key(event.message_id)
            doc = by_id.get(log_id)
            if doc is not None and doc.get("round", 0) != round_:
                continue  # a receipt for an earlier round of retry-failed: stale
        if doc is None and event.vendor_message_id:
            doc = by_vendor_id.get((vendor, event.vendor_message_id))
        if doc is None and event.campaign_id and event.customer_id:
            for make in (message_id, legacy_message_id):
                doc = await logs.find_one(
                    {
                        "_id": make(event.campaign_id, event.customer_id),
                        "campaignId": event.campaign_id,
                        "customerId": event.customer_id,
                    },
                    LOG_FIELDS,
                )
                if doc is not None:
                    break
        if doc is not None and doc.get("vendor") in may_name(reporters, vendor):
            found[(vendor, event.event_id)] = decode(doc, ReceiptTarget)
    return found


def log_updates(event: ReceiptEvent, now: datetime) -> list[tuple[Doc, Doc]]:
    """The receipt as the two updates precedence says (``status.as_updates``)."""
    return as_updates(event.status, event.at, now, event.reason)


def first_update(event: ReceiptEvent, now: datetime, log: ReceiptTarget) -> tuple[Doc, Doc] | None:
    """The one update the receipt needs, judged from the log as just read (each update
    costs SecantusDB about as much as a read, matched or not): the rank rise with its
    first-seen time, or an earlier first-seen time alone, or nothing at all. A rise that
    no longer matches (another receipt got there first) is redone as log_updates."""
    rise, first_seen = log_updates(event, now)
    if log.rank < RANK[event.status]:
        return rise[0], {**rise[1], **first_seen[1]}
    seen = log.times.get(event.status)
    if seen is not None and _aware(seen) <= _aware(event.at):
        return None
    return first_seen


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def apply_receipts(
    db: AsyncDatabase[Doc],
    metrics: Metrics,
    batches: Sequence[ReceiptBatch],
    recount: bool = True,
    soft: SoftBounceRule = DEFAULT_RULE,
) -> set[tuple[str, str]]:
    """Apply the receipts; returns the (user, campaign) pairs they touched, whose stats
    are recounted here unless ``recount`` is false (the actor then recounts them once
    it has caught up with the stream). ``soft``: when soft bounces suppress."""
    unique: dict[tuple[str, str], tuple[str, ReceiptEvent]] = {}
    reporters: dict[str, list[str]] = {}
    for received in batches:
        if received.reports_for:
            reporters[received.vendor] = received.reports_for
        for event in received.events:
            unique.setdefault((received.vendor, event.event_id), (received.vendor, event))
    events = list(unique.values())
    campaigns = await _apply_by_our_id(db, events, reporters)
    if campaigns is None:
        campaigns = await _apply_after_reading(db, metrics, events, reporters)
    await suppress_dead_addresses(db, events, reporters, soft)
    if recount:
        await recount_stats(db, campaigns)
    return campaigns


async def _apply_by_our_id(
    db: AsyncDatabase[Doc], events: Sequence[tuple[str, ReceiptEvent]], reporters: Reporters
) -> set[tuple[str, str]] | None:
    """One conditional update per receipt, when every receipt names its message by
    crmd's id and every update finds its log; None (after applying what matched, which
    the reading way then finds applied) when not."""
    now = datetime.now(UTC)
    updates = []
    named: set[str] = set()
    for vendor, event in events:
        log_id, round_ = parse_send_key(event.message_id)
        campaign = campaign_of(log_id) if event.message_id else None
        if campaign is None:
            return None
        named.add(campaign)
        where = {
            "_id": log_id,
            "vendor": {"$in": may_name(reporters, vendor)},
            "round": round_ if round_ else {"$in": [0, None]},
        }
        updates.append(UpdateOne(where, as_pipeline(event.status, event.at, now, event.reason)))
    if not updates:
        return set()
    # Across tenants on purpose, as the reading way's lookups: the log decides.
    logs = db.communication_log.with_options(write_concern=WriteConcern("majority"))
    result = await logs.bulk_write(updates, ordered=False)
    if result.matched_count < len(updates):
        return None
    owners = db.campaigns.find(
        {"_id": {"$in": [ObjectId(c) for c in sorted(named)]}}, projection={"userId": 1}
    )
    return {(d["userId"], str(d["_id"])) async for d in owners}


async def _apply_after_reading(
    db: AsyncDatabase[Doc],
    metrics: Metrics,
    events: Sequence[tuple[str, ReceiptEvent]],
    reporters: Reporters,
) -> set[tuple[str, str]]:
    """Each receipt's log read first: the update it needs then decided from it, and a
    receipt whose message is not found kept for a later try (``rematch_unknown``)."""
    logs = await find_logs(db, events, reporters)
    now = datetime.now(UTC)
    per_user: dict[str, list[tuple[Doc, Doc]]] = defaultdict(list)
    rises: dict[str, list[tuple[ReceiptEvent, ReceiptTarget]]] = defaultdict(list)
    campaigns: set[tuple[str, str]] = set()
    unknown = []
    tests = 0
    for vendor, event in events:
        doc = logs.get((vendor, event.event_id))
        if doc is None and is_test_send(event.message_id):
            tests += 1  # a test send has no log: its receipt is expected, and dropped
            continue
        if doc is None:
            unknown.append(
                {
                    "_id": f"{vendor}:{event.event_id}",
                    "vendor": vendor,
                    "reportsFor": list(reporters.get(vendor, ())),
                    "status": event.status,
                    "at": event.at,
                    "receivedAt": now,
                    "userId": None,
                    "unknown": True,
                    "messageId": event.message_id,
                    "vendorMessageId": event.vendor_message_id,
                    "campaignId": event.campaign_id,
                    "customerId": event.customer_id,
                    "reason": event.reason,
                }
            )
            continue
        first = first_update(event, now, doc)
        if first is not None:
            per_user[doc.userId].append(({"_id": doc.id, **first[0]}, first[1]))
            if first[0]:
                rises[doc.userId].append((event, doc))
        campaigns.add((doc.userId, doc.campaignId))
    for user, updates in per_user.items():
        mine = TenantStore(db, user, majority=True)["communication_log"]
        result = await mine.bulk_update(updates)
        if result.matched_count < len(updates):  # a rise lost a race: redo them exactly
            await mine.bulk_update(
                [
                    ({"_id": doc.id, **where}, update)
                    for event, doc in rises[user]
                    for where, update in log_updates(event, now)
                ]
            )
    if tests:
        metrics.receipts.labels("any", "test_send").inc(tests)
        log.info("receipt.test_send", count=tests)
    if unknown:
        metrics.receipts.labels("any", "unknown").inc(len(unknown))
        log.warning("receipt.unknown_message", count=len(unknown))
        await insert_new(db.receipt_events.insert_many(unknown, ordered=False))
    return campaigns


def is_dead_address(event: ReceiptEvent) -> bool:
    return event.status in (MessageStatus.BOUNCED, MessageStatus.COMPLAINED) or (
        event.status == MessageStatus.FAILED and hard_failure(event.reason)
    )


async def suppress_dead_addresses(
    db: AsyncDatabase[Doc],
    events: Sequence[tuple[str, ReceiptEvent]],
    reporters: Reporters | None = None,
    soft: SoftBounceRule = DEFAULT_RULE,
) -> int:
    """Suppress the addresses of the bounces, complaints and hard failures among
    ``events``, each on its own tenant's list (the tenant and the address from crmd's
    log, as always), and count the soft bounces (``soft.count_soft_bounces``); returns
    how many receipts named an address to suppress. Safe to repeat."""
    softly = MessageStatus.SOFT_BOUNCED
    dead = [(v, e) for v, e in events if is_dead_address(e) or e.status == softly]
    if not dead:
        return 0
    logs = await find_logs(db, dead, reporters)
    per_user: dict[str, list[Entry]] = defaultdict(list)
    soft_bounced = []
    for vendor, event in dead:
        found = logs.get((vendor, event.event_id))
        if found is None or not found.recipient:
            continue  # not logged yet: suppressed when it is rematched
        if event.status == softly:
            soft_bounced.append((event, found))
            continue
        source, reason = _listed_as(event)
        per_user[found.userId].append(
            Entry(found.recipient, reason, source, found.campaignId, found.customerId)
        )
    failures = [e for entries in per_user.values() for e in entries if e.source == "failure"]
    if failures and not dead_in(len(events), failures):  # every receipt alike: the relay
        per_user = {u: [e for e in es if e.source != "failure"] for u, es in per_user.items()}
    for user, entries in per_user.items():
        await suppress(TenantStore(db, user), entries)
    if soft_bounced:
        await count_soft_bounces(db, soft, soft_bounced)
    return sum(len(entries) for entries in per_user.values())


def _listed_as(event: ReceiptEvent) -> tuple[Source, str]:
    """How a dead address goes on the list: a complaint at once, as such."""
    if event.status == MessageStatus.COMPLAINED:
        return "complaint", "complaint"
    if event.status == MessageStatus.BOUNCED:
        return "bounce", event.reason or "bounced"
    return "failure", event.reason or "failed for good"


async def recount_stats(db: AsyncDatabase[Doc], campaigns: set[tuple[str, str]]) -> None:
    for user, campaign in sorted(campaigns):
        await stats.refresh(TenantStore(db, user), campaign)


REMATCH_WINDOW = timedelta(hours=1)
REMATCH_BATCH = 1000


async def rematch_unknown(
    db: AsyncDatabase[Doc], metrics: Metrics, now: datetime, soft: SoftBounceRule = DEFAULT_RULE
) -> int:
    """Receipts that named a message crmd could not find yet: a vendor may call back
    before crmd has recorded its message id. Recent ones are tried again; those that now
    match are applied (and no longer unknown). Returns how many matched."""
    docs = [
        d
        async for d in db.receipt_events.find(
            {"unknown": True, "receivedAt": {"$gte": now - REMATCH_WINDOW}}, limit=REMATCH_BATCH
        )
    ]
    if not docs:
        return 0
    events = [
        (
            d["vendor"],
            ReceiptEvent(
                status=d["status"],
                at=d["at"],
                event_id=d["_id"].split(":", 1)[1],
                message_id=d.get("messageId", ""),
                vendor_message_id=d.get("vendorMessageId", ""),
                campaign_id=d.get("campaignId", ""),
                customer_id=d.get("customerId", ""),
                reason=d.get("reason", ""),
            ),
        )
        for d in docs
    ]
    reporters = {d["vendor"]: d["reportsFor"] for d in docs if d.get("reportsFor")}
    found = await find_logs(db, events, reporters)
    matched = [(v, e) for v, e in events if (v, e.event_id) in found]
    if not matched:
        return 0
    for ids in in_batches(f"{v}:{e.event_id}" for v, e in matched):
        await db.receipt_events.delete_many({"_id": {"$in": ids}, "unknown": True})
    by_vendor: dict[str, list[ReceiptEvent]] = defaultdict(list)
    for vendor, event in matched:
        by_vendor[vendor].append(event)
    await apply_receipts(
        db,
        metrics,
        [ReceiptBatch(v, es, reporters.get(v, [])) for v, es in by_vendor.items()],
        soft=soft,
    )
    log.info("receipt.rematched", count=len(matched))
    return len(matched)
