"""The one writer of a campaign's status: each change is a conditional update from the
states ``crmd.campaigns.lifecycle`` allows, so a race (a pause and the last chunk, two
processes, a cancel mid-planning) ends in one state and nobody undoes anybody."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ReturnDocument

from crmd.campaigns.lifecycle import MOVES, Action, refusal
from crmd.errors import Conflict, NotFound
from crmd.store.tenant import ScopedCollection

Doc = dict[str, Any]


async def move(
    campaigns: ScopedCollection, campaign_id: ObjectId, action: Action, **changes: Any
) -> Doc | None:
    """Take ``action`` if the campaign's state allows it, setting ``changes`` with the
    new status; the campaign after the move, or None when it was not allowed (or the
    campaign is gone)."""
    rule = MOVES[action]
    return await campaigns.find_one_and_update(
        {"_id": campaign_id, "status": {"$in": sorted(rule.sources)}},
        {"$set": {"status": rule.target.value, "updatedAt": datetime.now(UTC), **changes}},
        return_document=ReturnDocument.AFTER,
    )


async def move_or_refuse(
    campaigns: ScopedCollection, campaign_id: ObjectId, action: Action, **changes: Any
) -> Doc:
    """``move``, or 409 naming the action and the state the campaign was found in."""
    moved = await move(campaigns, campaign_id, action, **changes)
    if moved is not None:
        return moved
    found = await campaigns.find_one({"_id": campaign_id}, projection={"status": 1})
    if found is None:  # absent, or another user's: the same from outside
        raise NotFound(f"campaign {str(campaign_id)!r} not found")
    status = found["status"]
    raise Conflict(refusal(action, status), details={"status": status, "action": action.value})
