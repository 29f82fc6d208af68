"""A campaign's stats, counted from its logs (so they are exact by construction).

A recipient gets a log when the vendor is handed the message (``crmd.campaigns.chunks``),
so those planned and not yet handed over are the places given (``planSeq``, then
``lastSeq``) less the logs written: they count as pending too.

What the messages did after hand-over (bounced, complained, opened, clicked, and the
clicks per link: ``crmd.campaigns.engagement``) is counted in the same pass over the
logs, and stored beside the stats (``engagement``, ``linkClicks``) in the same write.

Recounts run at once in several places (the receipts actor, the dispatch actor, the
clock), so each takes a ticket before it counts and stores its count only if no recount
with a later ticket has stored one already: the stats never go back to an older count."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pymongo import ReturnDocument

from crmd.campaigns import engagement
from crmd.campaigns.lifecycle import Action
from crmd.campaigns.transitions import move
from crmd.messages import MessageStatus
from crmd.store.documents import CampaignProgress, decode, projection
from crmd.store.numbering import BY_STATUS
from crmd.store.tenant import TenantStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

GROUPS = {
    "pending": (MessageStatus.PENDING,),
    "sent": (MessageStatus.SENT,),
    "delivered": (
        MessageStatus.DELIVERED,
        MessageStatus.OPENED,
        MessageStatus.CLICKED,
        MessageStatus.COMPLAINED,
    ),
    "failed": (MessageStatus.FAILED, MessageStatus.BOUNCED),
    "unknown": (MessageStatus.UNKNOWN,),
    "cancelled": (MessageStatus.CANCELLED,),
    "suppressed": (MessageStatus.SUPPRESSED,),
    "heldOut": (MessageStatus.HELD_OUT,),
}
"""Each figure of a campaign's stats and the log statuses it counts. ``suppressed``:
recipients on the suppression list when the campaign was planned or when their message
was to be handed over, never sent to; ``heldOut``: the campaign's holdout group, never
sent to on purpose."""


def summarise(by_status: dict[str, int]) -> dict[str, int]:
    return {name: sum(by_status.get(s, 0) for s in statuses) for name, statuses in GROUPS.items()}


async def count_logs(
    store: TenantStore, campaign_id: str
) -> tuple[dict[str, int], dict[str, int], dict[str, list[int]], dict[str, dict[str, int]]]:
    """The campaign's logs by status, what they did (``engagement.FIGURES``), the
    clicks per link and the A/B variants' figures: one pass over its logs, and one over
    those clicked, if any were."""
    logs = store["communication_log"]
    groups = [doc async for doc in await logs.aggregate(engagement.log_groups(campaign_id))]
    by_status, figures, any_clicks = engagement.tally(groups)
    links: dict[str, list[int]] = {}
    if any_clicks:
        counted = await logs.aggregate(engagement.link_clicks(campaign_id))
        links = engagement.links_by_index([doc async for doc in counted])
    figures["clicks"] = sum(total for _, total in links.values())
    return by_status, figures, links, engagement.by_variant(groups)


async def refresh(store: TenantStore, campaign_id: str) -> dict[str, int]:
    """Recount and store the stats; a sent campaign with nothing pending is completed.
    Only the actors and the actions call this: a read never writes."""
    ticket = await take_ticket(store, campaign_id)
    stats, point = await recount(store, campaign_id)
    await store_count(store, campaign_id, ticket, point)
    if stats["pending"] == 0:
        campaigns = store["campaigns"]
        await move(campaigns, ObjectId(campaign_id), Action.COMPLETE, completedAt=datetime.now(UTC))
    return stats


async def take_ticket(store: TenantStore, campaign_id: str) -> int:
    """The number of this recount, above every ticket taken before it (0: no campaign)."""
    taken = await store["campaigns"].find_one_and_update(
        {"_id": ObjectId(campaign_id)},
        {"$inc": {"statsTicket": 1}},
        projection={"statsTicket": 1},
        return_document=ReturnDocument.AFTER,
    )
    return int(taken["statsTicket"]) if taken else 0


async def recount(store: TenantStore, campaign_id: str) -> tuple[dict[str, int], dict[str, Any]]:
    """The stats counted now, and the fields that store them (with the timeline's point,
    what the messages did and the clicks per link)."""
    by_status, figures, links, variants = await count_logs(store, campaign_id)
    stats = summarise(by_status)
    now = datetime.now(UTC)
    # Read after the logs were counted: places given meanwhile count as pending.
    found = await store["campaigns"].find_one(
        {"_id": ObjectId(campaign_id)}, projection=projection(CampaignProgress)
    )
    started = decode(found, CampaignProgress) if found else None
    if started:
        planned = started.lastSeq or started.planSeq
        stats["pending"] += max(0, planned - sum(by_status.values()))
    point: dict[str, Any] = {
        "stats": stats,
        BY_STATUS: by_status,
        "engagement": figures,
        "linkClicks": links,
    }
    if variants:
        point["variantStats"] = variants
    since = started and (started.plannedAt or started.createdAt)
    if since:
        point[f"timeline.{timeline_key(since, now)}"] = timeline_point(stats, figures)
    return stats, point


async def store_count(
    store: TenantStore, campaign_id: str, ticket: int, point: dict[str, Any]
) -> bool:
    """Store a recount unless one with a later ticket has been stored; true if stored.
    The user's messages by status move by what the campaign's changed (read in the same
    write), so the dashboard reads them off its tally."""
    newer_not_stored = {
        "_id": ObjectId(campaign_id),
        "$or": [{"statsVersion": {"$lt": ticket}}, {"statsVersion": {"$exists": False}}],
    }
    before = await store["campaigns"].find_one_and_update(
        newer_not_stored,
        {"$set": {**point, "statsVersion": ticket}},
        projection={BY_STATUS: 1},
        return_document=ReturnDocument.BEFORE,
    )
    if before is None:
        return False
    if BY_STATUS in before:  # one from before they were kept is counted by the recount
        was, now = before[BY_STATUS], point[BY_STATUS]
        change = {s: now.get(s, 0) - was.get(s, 0) for s in {*was, *now}}
        await store.add_to_statuses(change)
    return True


def timeline_key(since: datetime, now: datetime) -> int:
    """The second, counted from when the campaign started, that a snapshot of its stats
    stands for: 5-second steps in its first ten minutes, a minute's until two hours,
    ten minutes' after. A campaign keeps a few hundred points, however long it runs."""
    elapsed = max(0, int((now - since.replace(tzinfo=since.tzinfo or UTC)).total_seconds()))
    step = 5 if elapsed < 600 else 60 if elapsed < 7200 else 600
    return elapsed // step * step


def timeline_point(stats: dict[str, int], figures: dict[str, int] | None = None) -> list[int]:
    """[handed over, delivered, failed, opened (by people), clicked] so far. (Points
    stored before opens and clicks were counted have the first three only.)"""
    handed = sum(stats.get(k, 0) for k in ("sent", "delivered", "failed", "unknown"))
    done = figures or {}
    return [
        handed,
        stats.get("delivered", 0),
        stats.get("failed", 0),
        done.get("openedPeople", 0),
        done.get("clicked", 0),
    ]


def delivery_rate(stats: dict[str, Any], audience: int) -> float:
    """Recipients reached over those meant to be messaged (the holdout is not)."""
    reached = stats.get("sent", 0) + stats.get("delivered", 0)
    meant = audience - stats.get("heldOut", 0)
    return round(reached / meant, 4) if meant > 0 else 0.0


async def mark_for_recount(redis: Redis, key: str, campaigns: set[tuple[str, str]]) -> None:
    """Mark (user, campaign) pairs in the Redis hash ``key`` for the receipts actor to
    recount (``crmd.receipts.actor``): each mark's count is its version."""
    if campaigns:
        async with redis.pipeline(transaction=False) as pipe:
            for user, campaign in sorted(campaigns):
                pipe.hincrby(key, f"{user}:{campaign}", 1)
            await pipe.execute()
