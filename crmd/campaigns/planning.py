"""Planning a campaign: its recipients and their messages, kept a chunk at a time
(``crmd.campaigns.chunks``), and the send jobs for them, a stretch of customers at a
time.

The audience is the customers numbered up to the highest number when planning began
(``planTop``; ``crmd.store.numbering``) that match the rule at the campaign's
``ruleNow``. Each plan job reads one stretch of ``PLAN_STRETCH`` customer numbers
(a range the database answers from its index), tests the rule in Python (the reference
evaluator) and writes their chunks; then it queues the job for the next stretch, and
only then records the stretch as done (``planNext``). A job never runs long, whatever
the audience, so none outlives its deadline.

A customer whose address is on the tenant's suppression list keeps their place but is
not sent to: their log is written at once as SUPPRESSED (the campaign's stats count
them as ``suppressed``). The list is asked once a stretch, for all its customers.

A customer in the holdout (``crmd.campaigns.groups``) is planned like the others, with
no message, and logged HELD_OUT when their chunk is sent: the time they would have been
messaged, from which their orders are attributed. An A/B test's recipients are each
planned with their variant's message; with a winner to pick, the test share is planned
first and the rest once the winner is known, by a second pass over the same customers
(``planNext`` back at 1; places go on from ``planSeq``).

Safe to repeat anywhere: a chunk's id is its campaign and its first place, and a log's
is derived from (campaign, customer), so planning a stretch again adds nothing; a job
whose stretch is already recorded does nothing; a crash between queueing the next job
and recording the stretch redoes the stretch and queues the next job twice, and the
second copy finds its stretch recorded and stops.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from bson import ObjectId
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.campaigns import chunks, compose, groups, jobs, stats
from crmd.campaigns.dispatch import cancel_unsent, mark_sent_if_done
from crmd.campaigns.lifecycle import Action, Status
from crmd.campaigns.transitions import move
from crmd.campaigns.vendors import Vendors
from crmd.messages import message_id
from crmd.segments.counts import fields_of
from crmd.segments.evaluate import evaluate
from crmd.segments.parse import parse_rule
from crmd.store.documents import Campaign, CampaignState, decode, projection
from crmd.store.numbering import COUNTERS
from crmd.store.tenant import TenantStore
from crmd.suppressions.entries import suppressed_among
from crmd.suppressions.links import UnsubscribeLinks

log = structlog.get_logger(__name__)
PLAN_STRETCH = 5000
"""Customer numbers one plan job reads: about a second of the embedded database's time."""
PLAN_BATCH = 1000


class PlanningError(Exception):
    """A recipient's message could not be prepared; the message names the customer."""


async def plan(
    store: TenantStore,
    redis: Redis,
    stream: str,
    job: jobs.DispatchJob,
    vendors: Vendors | None = None,
    links: UnsubscribeLinks | None = None,
) -> None:
    """Plan the stretch of customers from ``job.start`` (0: wherever planning is now).
    With ``links``, every message to an address carries its unsubscribe link."""
    campaigns = store["campaigns"]
    campaign = await move(campaigns, ObjectId(job.campaign), Action.PLAN)
    if campaign is None:
        return  # not queued any more: cancelled, paused, or planned already
    if campaign.planTop is None:
        top = await store.highest("customers")
        await campaigns.update_one(
            {"_id": campaign.id, "planTop": None},
            # chunked: its recipients wait in send_chunks, not as logs (dispatch.resent)
            {"$set": {"planTop": top, "planNext": 1, "planSeq": 0, "chunked": True}},
        )
        found = await campaigns.find_one({"_id": campaign.id})
        assert found is not None
        campaign = decode(found, Campaign)
    start = job.start or campaign.planNext
    if start != campaign.planNext:
        return  # a copy of a job whose stretch is done (after a crash)
    top = campaign.planTop or 0
    end = min(start + PLAN_STRETCH, top + 1)
    stretch = (start, end, campaign.planSeq)
    seq = await _plan_stretch(store, redis, stream, campaign, stretch, vendors, links)
    if seq is None:
        return  # paused or cancelled in the middle
    if end <= top:
        # Queued before it is recorded: a crash in between repeats this stretch (which
        # adds nothing) rather than leave the campaign with no job to go on.
        await jobs.publish(
            redis, stream, [jobs.DispatchJob("plan", job.campaign, store.user_id, start=end)]
        )
    await campaigns.update_one(
        {"_id": campaign.id, "planNext": start},
        {"$set": {"planNext": end, "planSeq": seq}},
    )
    if end > top:
        await _planned(store, campaign, seq)


async def _plan_stretch(
    store: TenantStore,
    redis: Redis,
    stream: str,
    campaign: Campaign,
    stretch: tuple[int, int, int],
    vendors: Vendors | None,
    links: UnsubscribeLinks | None,
) -> int | None:
    """Plans for the customers numbered [start, end) that the rule takes, their places
    given after ``seq``; the last place given, or None when the campaign stopped being
    planned."""
    start, end, seq = stretch
    node = parse_rule(campaign.rule)
    now = campaign.ruleNow.replace(tzinfo=UTC)
    templates = compose.templates_of(campaign)
    rate = vendors.get(campaign.vendor).rate_limit() if vendors else 1000.0
    chunk = jobs.chunk_size(rate)
    # What the rule and the templates read, and no more: most of a customer's fields
    # (its dates, its kept event times) would only be decoded to be dropped.
    read = {"n", "email", "phone", *compose.fields_used(templates)}
    read |= {field.split(".")[0] for field in fields_of(node)}
    found = [
        doc
        async for doc in store["customers"].find(
            {"n": {"$gte": start, "$lt": end}},
            projection=dict.fromkeys(sorted(read), 1),
            batch_size=PLAN_BATCH,
        )
    ]
    found.sort(key=lambda doc: doc["n"])
    taken = []
    for customer in found:
        if evaluate(node, customer, now):
            group = groups.group_of(campaign, str(customer["_id"]))
            if groups.in_phase(campaign, group):
                taken.append((customer, group))
    erased = links.erased if links is not None else None
    emails = (str(c.get("email") or "") for c, _ in taken)
    held = await suppressed_among(store, emails, erased=erased)
    written = datetime.now(UTC)
    batch: list[dict[str, Any]] = []
    left_out: list[tuple[dict[str, Any], str]] = []
    for customer, group in taken:
        seq += 1
        why = held.get(str(customer.get("email") or ""))
        if why is not None:
            left_out.append((_entry(store.user_id, campaign, customer, None, seq, None), why))
            continue
        variant = groups.variant_sent(campaign, group)
        chosen = None if group.held else templates[variant or 0]
        try:
            entry = _entry(store.user_id, campaign, customer, chosen, seq, links)
        except Exception as exc:  # a bug, but one that names whom it concerns
            raise PlanningError(
                f"customer {customer.get('_id')}: {type(exc).__name__}: {exc}"[:500]
            ) from exc
        if variant is not None and not group.held:  # the held out are no variant's
            entry["variant"] = variant
        if group.held:  # placed with the rest, so it is "handed over" when they are
            entry["heldOut"] = True
        batch.append(entry)
        if len(batch) >= PLAN_BATCH:
            await _write_chunks(store, redis, stream, campaign, batch, chunk, written)
            batch = []
    await _write_chunks(store, redis, stream, campaign, batch, chunk, written)
    await _write_suppressed(store, campaign, left_out, written)
    return seq if await _still_planning(store, campaign.id) else None


async def _planned(store: TenantStore, campaign: Campaign, seq: int) -> None:
    campaign_id = str(campaign.id)
    size = seq  # every recipient has a place, from 1
    planned = await move(
        store["campaigns"],
        campaign.id,
        Action.PLANNED,
        audienceSize=size,
        plannedAt=datetime.now(UTC),
        lastSeq=seq,
    )
    if planned is None:
        await _still_planning(store, campaign.id)  # a cancel: sweep what was written
        return
    await stats.refresh(store, campaign_id)  # some may be sent already: counted, not assumed
    # Other processes may have sent every chunk while this one was still planning.
    await mark_sent_if_done(store, campaign_id)


async def _still_planning(store: TenantStore, campaign_id: ObjectId) -> bool:
    """False once the campaign was paused or cancelled; a cancelled one has its
    unsent messages marked CANCELLED here (after the last of them was written)."""
    doc = await store["campaigns"].find_one(
        {"_id": campaign_id}, projection=projection(CampaignState)
    )
    status = decode(doc, CampaignState).status if doc else Status.CANCELLED
    if status == Status.CANCELLED:
        await cancel_unsent(store, str(campaign_id))
    return status == Status.PLANNING


def _entry(
    user: str,
    campaign: Campaign,
    customer: dict[str, Any],
    templates: compose.Templates | None,
    seq: int,
    links: UnsubscribeLinks | None,
) -> dict[str, Any]:
    """A recipient's plan: their message, or (no ``templates``: suppressed) none."""
    campaign_id, email = str(campaign.id), customer.get("email", "")
    entry = {
        "_id": message_id(campaign_id, customer["_id"]),
        "seq": seq,  # the recipient's place in the campaign: log pages are ranges of it
        "customerId": customer["_id"],
        "recipient": email,
        "phone": customer.get("phone", ""),
        "message": "",
    }
    if templates is not None:
        url = compose.unsubscribe_url(links, user, campaign_id, customer["_id"], email)
        tracking = links.tracking if links is not None else None
        link = compose.click_links(tracking, entry["_id"])
        entry["message"] = compose.text_for(templates, customer, url, link)
        values = compose.values_for(templates, customer)
        if values:
            entry["values"] = values
    return entry


async def _write_suppressed(
    store: TenantStore,
    campaign: Campaign,
    entries: list[tuple[dict[str, Any], str]],
    now: datetime,
) -> None:
    """The SUPPRESSED logs of a stretch, each with why (safe to repeat: a log's id is
    its message's)."""
    if not entries:
        return
    campaign_id, vendor = str(campaign.id), campaign.vendor
    logs = [chunks.suppressed_log(e, campaign_id, vendor, now, why) for e, why in entries]
    new, _ = await chunks.insert_logs(store, logs)
    await store.add_to_tally("messages", new)


async def _write_chunks(
    store: TenantStore,
    redis: Redis,
    stream: str,
    campaign: Campaign,
    batch: list[dict[str, Any]],
    size: int,
    now: datetime,
) -> None:
    if not batch:
        return
    campaign_id = str(campaign.id)
    ids = await chunks.write(store, campaign_id, campaign.vendor, batch, size, now)
    await jobs.publish(redis, stream, jobs.chunk_jobs(campaign_id, store.user_id, ids))


async def place_old_logs(db: AsyncDatabase[dict[str, Any]]) -> int:
    """Give a place (``seq``) to the logs of campaigns planned before logs had one, so
    their pages are ranges like any other's: once, at the first start of a crmd that
    pages by place (a marker says it is done). Returns how many logs were placed."""
    marker = {"_id": "migration:log-places"}
    if await db[COUNTERS].find_one(marker) is not None:
        return 0
    placed = 0
    async for campaign in db.campaigns.find({"lastSeq": {"$exists": False}}, projection={"_id": 1}):
        campaign_id = str(campaign["_id"])
        ids = [
            doc["_id"]
            async for doc in db.communication_log.find(
                {"campaignId": campaign_id}, projection={"_id": 1}
            )
        ]
        ids.sort()
        updates = [UpdateOne({"_id": i}, {"$set": {"seq": n}}) for n, i in enumerate(ids, 1)]
        for start in range(0, len(updates), 500):
            await db.communication_log.bulk_write(updates[start : start + 500], ordered=False)
        await db.campaigns.update_one(
            {"_id": campaign["_id"]}, {"$set": {"lastSeq": len(ids), "planSeq": len(ids)}}
        )
        placed += len(ids)
    await db[COUNTERS].update_one(
        marker, {"$set": {"at": datetime.now(UTC), "placed": placed}}, upsert=True
    )
    if placed:
        log.info("campaigns.logs_placed", logs=placed)
    return placed
