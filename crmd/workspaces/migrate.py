"""The upgrade to workspaces, run at start-up until it has finished once.

Before workspaces, every tenant document's ``userId`` held its user's id. Each user now
gets a workspace whose id is their own, with them as its owner, so every document
already names the workspace it belongs to: nothing is rewritten, lost or reassigned.
Each step is an upsert, so a crash (or two processes starting at once) leaves nothing
half done that the next run does not finish; a mark records the end."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo.asynchronous.database import AsyncDatabase

from crmd.workspaces.members import ensure_own_workspace

log = structlog.get_logger(__name__)
MARK = "workspaces-1"


async def give_users_workspaces(db: AsyncDatabase[dict[str, Any]]) -> int:
    """Make every user's own workspace; the number of users walked (0: done before)."""
    if await db.migrations.find_one({"_id": MARK}) is not None:
        return 0
    walked = 0
    users = db.users.find({}, projection={"email": 1, "name": 1}).sort("_id", 1)
    async for user in users:
        await ensure_own_workspace(
            db, str(user["_id"]), user.get("email", ""), user.get("name", "")
        )
        walked += 1
    await db.migrations.update_one(
        {"_id": MARK}, {"$set": {"doneAt": datetime.now(UTC), "users": walked}}, upsert=True
    )
    log.info("workspaces.migrated", users=walked)
    return walked
