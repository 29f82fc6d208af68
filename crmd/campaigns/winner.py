"""An A/B test's winner: picked when the test share has had its time, then sent to the
rest of the audience.

Once the test share is handed over, the campaign waits in ``testing`` until
``decideAt`` (``waitMinutes`` after; kept through a pause). The clock then counts its
stats and results afresh, picks the variant whose figure per recipient (clicked,
converted, or revenue: ``abTest.metric``) is highest (the first of equals), and in one
conditional move records the winner with every variant's figure and interval and queues
the campaign for planning again: the second pass plans the rest with the winner's
message (``crmd.campaigns.planning``). A crash before the move decides again; after it,
the plan job is queued again by the clock's stranded-campaign check. The test share is
never planned again: nobody gets two variants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.campaigns import effect, jobs, stats
from crmd.campaigns.lifecycle import Action, Status
from crmd.campaigns.transitions import move
from crmd.store.documents import Campaign, CampaignProgress, Doc, decode, encode
from crmd.store.experiments import Winner
from crmd.store.tenant import TenantStore

log = structlog.get_logger(__name__)


def decide_at(progress: CampaignProgress, now: datetime) -> datetime | None:
    """When a campaign whose messages are all handed over picks its winner; None when
    it has none to pick (no A/B test with a winner, or picked already)."""
    test = progress.abTest
    if test is None or test.mode != "winner" or progress.winner is not None:
        return None
    if progress.decideAt is not None:  # (resumed after a pause in testing)
        return progress.decideAt
    return now + timedelta(minutes=test.waitMinutes)


def pick(doc: Campaign, now: datetime) -> Winner:
    """The variant with the best figure per recipient, and why, in words."""
    assert doc.abTest is not None
    metric = doc.abTest.metric
    rows = effect.variants_view(doc)
    figures: list[dict[str, Any]] = [
        {
            "variant": row["index"],
            "label": row["label"],
            "recipients": row["recipients"],
            "value": row["metric"],
        }
        for row in rows
    ]
    scored = [
        (f["value"]["estimate"] if f["value"] else float("-inf"), -f["variant"]) for f in figures
    ]
    best = max(range(len(figures)), key=lambda i: scored[i])
    return Winner(
        variant=best,
        metric=metric,
        decidedAt=now,
        figures=figures,
        reason=_reason(figures, best, metric),
    )


def _reason(figures: list[dict[str, Any]], best: int, metric: str) -> str:
    what = metric  # (each metric is named as the figure it counts)
    won = figures[best]
    if won["value"] is None:
        return f"No variant had recipients to judge by {what}: {won['label']} was sent."

    def shown(x: float) -> str:
        return f"{x:.2f}" if metric == "revenue" else f"{x:.1%}"

    def said(f: dict[str, Any]) -> str:
        v = f["value"]
        if v is None:
            return f"{f['label']} had no recipients"
        return (
            f"{f['label']} {shown(v['estimate'])} (95 % interval {shown(v['low'])} to"
            f" {shown(v['high'])}, {f['recipients']} recipients)"
        )

    others = [f for f in figures if f is not won]
    top = won["value"]["estimate"]
    if any(f["value"] and f["value"]["estimate"] == top for f in others):
        # A tie (nobody clicked or ordered yet, say): the first of equals is sent.
        every = "; ".join(said(f) for f in figures)
        return (
            f"No variant led by {what} per recipient: {every}."
            f" Of the equals, {won['label']}, the first, was sent."
        )
    overlap = any(f["value"] and f["value"]["high"] >= won["value"]["low"] for f in others)
    verdict = (
        " The intervals overlap: its lead may be chance."
        if overlap
        else " Its interval lies above every other's."
    )
    rest = "; ".join(said(f) for f in others)
    return f"{won['label']} had the most {what} per recipient: {said(won)}; {rest}.{verdict}"


async def decide_due(db: AsyncDatabase[Doc], redis: Redis, stream: str, now: datetime) -> int:
    """The clock's pass: pick the winner of every test whose time has come and queue
    the rest of its audience for planning. Returns how many were decided."""
    decided = 0
    due = {"status": Status.TESTING.value, "decideAt": {"$lte": now}}
    async for found in db.campaigns.find(due, projection={"userId": 1}):
        store = TenantStore(db, found["userId"])
        campaign_id = str(found["_id"])
        await stats.refresh(store, campaign_id)
        await effect.refresh_results(store, campaign_id)
        raw = await store["campaigns"].find_one({"_id": found["_id"]})
        if raw is None:
            continue
        winner = pick(decode(raw, Campaign), datetime.now(UTC))
        moved = await move(
            store["campaigns"],
            found["_id"],
            Action.DECIDE,
            winner=encode(winner),
            planNext=1,
            plannedAt=None,
            lastSeq=None,
        )
        if moved is None:
            continue  # paused, cancelled, or decided by another clock
        await jobs.publish(redis, stream, [jobs.DispatchJob("plan", campaign_id, store.user_id)])
        decided += 1
    return decided
