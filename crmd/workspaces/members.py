"""Workspaces and who belongs to them.

A workspace owns the data: every tenant document's ``userId`` field holds its
workspace's id (the field kept its name so that the upgrade rewrites no document; see
``crmd.workspaces.migrate``). A person's own workspace has the person's id, so the data
each user had before workspaces is, unchanged, the data of their own workspace.

A membership is one document, ``{workspaceId}:{userId}``, holding the role."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import msgspec
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from crmd.errors import Conflict, Forbidden, NotFound, Unprocessable
from crmd.workspaces.roles import ROLE_ORDER

Database = AsyncDatabase[dict[str, Any]]
NAME_MAX = 80
WORKSPACES_PER_PERSON = 50


class Membership(msgspec.Struct, frozen=True):
    workspace: str
    user: str
    role: str
    email: str = ""
    name: str = ""
    """The workspace's name."""


def membership_id(workspace: str, user: str) -> str:
    return f"{workspace}:{user}"


def checked_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Unprocessable("a workspace needs a name", details={"field": "name"})
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise Unprocessable(
            "a workspace's name may not hold control or formatting characters",
            details={"field": "name"},
        )
    if len(name) > NAME_MAX:
        raise Unprocessable(
            f"a workspace's name has at most {NAME_MAX} characters", details={"field": "name"}
        )
    return name.strip()


def checked_role(role: Any, field: str = "role") -> str:
    if role not in ROLE_ORDER:
        raise Unprocessable(
            f"role must be one of {', '.join(ROLE_ORDER)}",
            details={"field": field, "allowed": list(ROLE_ORDER)},
        )
    return str(role)


async def ensure_own_workspace(db: Database, user_id: str, email: str, name: str) -> None:
    """The person's own workspace (id: theirs) and their ownership of it, made once.
    Both writes are upserts, so running this again (after a crash, on every sign-in)
    changes nothing; a person who later left their own workspace is not put back."""
    now = datetime.now(UTC)
    made = await db.workspaces.update_one(
        {"_id": ObjectId(user_id)},
        {
            "$setOnInsert": {
                "name": f"{name or email}'s workspace",
                "createdAt": now,
                "createdBy": user_id,
            }
        },
        upsert=True,
    )
    if made.upserted_id is None and await db.memberships.count_documents(
        {"workspaceId": user_id, "role": "owner"}
    ):
        return
    await db.memberships.update_one(
        {"_id": membership_id(user_id, user_id)},
        {
            "$setOnInsert": {
                "workspaceId": user_id,
                "userId": user_id,
                "email": email,
                "role": "owner",
                "joinedAt": now,
            }
        },
        upsert=True,
    )


async def create_workspace(db: Database, user_id: str, email: str, name: str) -> str:
    """A new workspace with the person as its owner; its id."""
    name = checked_name(name)
    if await db.memberships.count_documents({"userId": user_id}) >= WORKSPACES_PER_PERSON:
        raise Forbidden(f"a person belongs to at most {WORKSPACES_PER_PERSON} workspaces")
    workspace = ObjectId()
    now = datetime.now(UTC)
    # The membership first: a crash between the two leaves a membership whose workspace
    # lists with its id until the workspace is written, never a workspace with no owner.
    await add_member(db, str(workspace), user_id, email, "owner")
    await db.workspaces.insert_one(
        {"_id": workspace, "name": name, "createdAt": now, "createdBy": user_id}
    )
    return str(workspace)


async def add_member(db: Database, workspace: str, user_id: str, email: str, role: str) -> None:
    try:
        await db.memberships.insert_one(
            {
                "_id": membership_id(workspace, user_id),
                "workspaceId": workspace,
                "userId": user_id,
                "email": email,
                "role": role,
                "joinedAt": datetime.now(UTC),
            }
        )
    except DuplicateKeyError:
        raise Conflict(f"{email} is already a member of this workspace") from None


async def membership(db: Database, workspace: str, user_id: str) -> Membership | None:
    doc = await db.memberships.find_one({"_id": membership_id(workspace, user_id)})
    if doc is None:
        return None
    return Membership(workspace, user_id, doc["role"], doc.get("email", ""))


async def memberships_of(db: Database, user_id: str) -> list[Membership]:
    """The person's workspaces with their names, oldest membership first."""
    found = [d async for d in db.memberships.find({"userId": user_id}).sort("joinedAt", 1)]
    ids = []
    for doc in found:
        try:
            ids.append(ObjectId(doc["workspaceId"]))
        except InvalidId:  # an id no workspace can have
            continue
    names = {
        str(w["_id"]): w.get("name", "")
        async for w in db.workspaces.find({"_id": {"$in": ids}}, projection={"name": 1})
    }
    return [
        Membership(
            d["workspaceId"],
            user_id,
            d["role"],
            d.get("email", ""),
            names.get(d["workspaceId"], ""),
        )
        for d in found
    ]


async def members(db: Database, workspace: str) -> list[dict[str, Any]]:
    return [
        {
            "userId": d["userId"],
            "email": d.get("email", ""),
            "role": d["role"],
            "joinedAt": d.get("joinedAt"),
        }
        async for d in db.memberships.find({"workspaceId": workspace}).sort("joinedAt", 1)
    ]


async def change_role(
    db: Database, workspace: str, user_id: str, role: str, by_owner: bool
) -> dict[str, Any]:
    """Set a member's role; only an owner makes or unmakes owners, and the last owner
    stays one. Returns ``{"from", "to"}``."""
    role = checked_role(role)
    current = await membership(db, workspace, user_id)
    if current is None:
        raise NotFound(f"member {user_id!r} not found")
    if "owner" in (role, current.role) and not by_owner:
        raise Forbidden(
            "only an owner makes or unmakes owners", code="owner_only", details={"needs": "own"}
        )
    if current.role == "owner" and role != "owner":
        await _keep_an_owner(db, workspace, user_id)
    key = {"_id": membership_id(workspace, user_id)}
    await db.memberships.update_one(key, {"$set": {"role": role}})
    if current.role == "owner" and not await _owners(db, workspace):
        # Two owners demoted each other at once: both checks saw the other. Put this
        # one back; the workspace keeps an owner whatever the interleaving.
        await db.memberships.update_one(key, {"$set": {"role": "owner"}})
        raise _last_owner()
    return {"from": current.role, "to": role}


async def remove_member(db: Database, workspace: str, user_id: str, by_owner: bool) -> str:
    """Take a member out; their role. The last owner cannot leave."""
    current = await membership(db, workspace, user_id)
    if current is None:
        raise NotFound(f"member {user_id!r} not found")
    if current.role == "owner":
        if not by_owner:
            raise Forbidden(
                "only an owner removes an owner", code="owner_only", details={"needs": "own"}
            )
        await _keep_an_owner(db, workspace, user_id)
    key = {"_id": membership_id(workspace, user_id)}
    removed = await db.memberships.find_one_and_delete(key)
    if removed is None:
        raise NotFound(f"member {user_id!r} not found")
    if current.role == "owner" and not await _owners(db, workspace):
        await db.memberships.insert_one(removed)  # as above: the last owner stays
        raise _last_owner()
    return current.role


async def _keep_an_owner(db: Database, workspace: str, leaving: str) -> None:
    others = await db.memberships.count_documents(
        {"workspaceId": workspace, "role": "owner", "userId": {"$ne": leaving}}
    )
    if not others:
        raise _last_owner()


async def _owners(db: Database, workspace: str) -> int:
    return await db.memberships.count_documents({"workspaceId": workspace, "role": "owner"})


def _last_owner() -> Conflict:
    return Conflict(
        "a workspace keeps at least one owner: make someone else owner first",
        code="last_owner",
    )
