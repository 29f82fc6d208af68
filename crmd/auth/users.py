"""Users: the tenants. Keyed by their identity provider's subject (Google's ``sub``, or
``dev:<email>`` for dev login); every other document carries a user's id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from crmd.emails import normalise_email
from crmd.workspaces.members import ensure_own_workspace

Database = AsyncDatabase[dict[str, Any]]


class User(msgspec.Struct, frozen=True):
    id: str
    email: str
    name: str = ""
    picture: str = ""
    sub: str = ""
    """The identity provider's subject; ``dev:<email>`` for dev login."""
    hd: str = ""
    """The Google Workspace domain, when the account has one."""

    @property
    def is_dev(self) -> bool:
        return self.sub.startswith("dev:")

    def public(self) -> dict[str, str]:
        return {"id": self.id, "email": self.email, "name": self.name, "picture": self.picture}


def _user(doc: dict[str, Any]) -> User:
    return User(
        id=str(doc["_id"]),
        email=doc["email"],
        name=doc.get("name", ""),
        picture=doc.get("picture", ""),
        sub=doc.get("sub", ""),
        hd=doc.get("hd", ""),
    )


async def upsert_user(
    db: Database, sub: str, email: str, name: str, picture: str, hd: str = ""
) -> User:
    """Create the user on first sign-in; refresh email, name, picture and domain after.
    ``email`` is spelt as ``normalise_email`` spells it (the caller read it)."""
    now = datetime.now(UTC)
    doc = await db.users.find_one_and_update(
        {"sub": sub},
        {
            "$set": {
                "email": email,
                "name": name,
                "picture": picture,
                "hd": hd,
                "lastLoginAt": now,
            },
            "$setOnInsert": {"sub": sub, "createdAt": now},
        },
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert doc is not None  # upsert=True always leaves a document
    user = _user(doc)
    # Every way in (Google, dev login, ``crmd token``) comes here: no one is left
    # without a workspace of their own.
    await ensure_own_workspace(db, user.id, user.email, user.name)
    return user


def dev_subject(email: str) -> str:
    return f"dev:{email.lower()}"


async def upsert_dev_user(db: Database, email: str) -> User:
    """The dev user for ``email``, made if new; InvalidEmail for an address that is not
    one, or hides characters that would make it a look-alike of another."""
    email = normalise_email(email)
    return await upsert_user(db, dev_subject(email), email, email.split("@", 1)[0], "")


async def find_user(db: Database, user_id: str) -> User | None:
    try:
        oid = ObjectId(user_id)
    except (InvalidId, TypeError):
        return None
    doc = await db.users.find_one({"_id": oid})
    return _user(doc) if doc else None


async def find_user_by_email(db: Database, email: str) -> User | None:
    """The most recently active user with this email, spelt as ``normalise_email``
    spells it (Google accounts may share one)."""
    doc = await db.users.find_one({"email": email}, sort=[("lastLoginAt", -1)])
    return _user(doc) if doc else None
