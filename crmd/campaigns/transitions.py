"""The one writer of a campaign's status: each change is a conditional update from the
states ``crmd.campaigns.lifecycle`` allows, so a race (a pause and the last chunk, two
processes, a cancel mid-planning) ends in one state and nobody undoes anybody."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from bson import ObjectId
from pymongo import ReturnDocument

from crmd.campaigns.lifecycle import MOVES, Action, refusal
from crmd.errors import Conflict, NotFound
from crmd.store.documents import Campaign, CampaignState, decode, projection
from crmd.store.tenant import ScopedCollection

log = structlog.get_logger(__name__)

STEPS = {
    Action.SEND: "queued",
    Action.SCHEDULE: "scheduled",
    Action.START: "queued",
    Action.PLAN: "planning",
    Action.PLANNED: "planned",
    Action.PAUSE: "paused",
    Action.RESUME: "resumed",
    Action.REPLAN: "resumed",
    Action.CANCEL: "cancelled",
    Action.HANDED_OVER: "sent",
    Action.COMPLETE: "completed",
    Action.RETRY_FAILED: "retrying",
    Action.FAIL: "failed",
    Action.TESTED: "testing",
    Action.DECIDE: "winner_picked",
}
"""Each move's line in the log: ``campaign.<step>``."""


async def move(
    campaigns: ScopedCollection, campaign_id: ObjectId, action: Action, **changes: Any
) -> Campaign | None:
    """Take ``action`` if the campaign's state allows it, setting ``changes`` with the
    new status; the campaign after the move, or None when it was not allowed (or the
    campaign is gone)."""
    rule = MOVES[action]
    changed = {"status": rule.target.value, "updatedAt": datetime.now(UTC), **changes}
    before = await campaigns.find_one_and_update(
        {"_id": campaign_id, "status": {"$in": sorted(rule.sources)}},
        {"$set": changed},
        return_document=ReturnDocument.BEFORE,
    )
    if before is None:
        return None
    campaign = decode({**before, **changed}, Campaign)  # every change is a whole field
    if before["status"] != campaign.status or action is not Action.PLAN:
        log_step(action, campaign)  # (a planner taking over from one that died: no step)
    return campaign


def log_step(action: Action, campaign: Campaign) -> None:
    """One line a move, with how long the campaign has taken so far (since it was
    created, and since it was planned once it was); its audience; and, once completed,
    its final figures (before then the stored ones lag the receipts)."""
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "campaign_id": str(campaign.id),
        "status": campaign.status,
        "seconds": _since(campaign.createdAt, now),
        "audience": campaign.audienceSize,
    }
    if campaign.plannedAt is not None:
        fields["seconds_since_planned"] = _since(campaign.plannedAt, now)
    if action is Action.COMPLETE:  # counted by the recount that completed it
        stats = campaign.stats
        fields.update({k: v for k, v in stats.items() if v})
    if action is Action.FAIL:
        log.warning(f"campaign.{STEPS[action]}", reason=campaign.reason, **fields)
    else:
        log.info(f"campaign.{STEPS[action]}", **fields)


def _since(at: datetime | None, now: datetime) -> float | None:
    if at is None:
        return None
    return round((now - (at if at.tzinfo else at.replace(tzinfo=UTC))).total_seconds(), 3)


async def move_or_refuse(
    campaigns: ScopedCollection, campaign_id: ObjectId, action: Action, **changes: Any
) -> Campaign:
    """``move``, or 409 naming the action and the state the campaign was found in."""
    moved = await move(campaigns, campaign_id, action, **changes)
    if moved is not None:
        return moved
    found = await campaigns.find_one({"_id": campaign_id}, projection=projection(CampaignState))
    if found is None:  # absent, or another user's: the same from outside
        raise NotFound(f"campaign {str(campaign_id)!r} not found")
    status = decode(found, CampaignState).status
    raise Conflict(refusal(action, status), details={"status": status, "action": action.value})
