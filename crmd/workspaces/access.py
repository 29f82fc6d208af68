"""Who is calling, in which workspace, allowed to do what: a person with a role in a
workspace, or an API key with its scopes. Made once per request by the authentication
middleware; the tenant store and the permission guard read it and nothing else."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from crmd.errors import Forbidden, Unauthorized
from crmd.workspaces.members import Membership, membership, memberships_of
from crmd.workspaces.rates import KeyRates
from crmd.workspaces.roles import ROLES

Database = AsyncDatabase[dict[str, Any]]
KEY_PREFIX = "crmd_"
KEY_BYTES = 32
"""256 random bits: a stolen database holds only their SHA-256, and no search over
2^256 keys finds one, so the hash need not be slow."""
LAST_USED_EVERY = 60.0
"""Seconds between two writes of a key's last use (and its address)."""
WORKSPACE_HEADER = "X-Crmd-Workspace"


class Caller(msgspec.Struct, frozen=True):
    workspace: str
    """The workspace acted in; empty for a person who belongs to none."""
    permissions: frozenset[str]
    role: str = ""
    """The person's role; empty for a key."""
    user: str = ""
    email: str = ""
    key: str = ""
    """The key's id, when a key calls."""
    key_name: str = ""
    address: str = ""

    @property
    def is_person(self) -> bool:
        return bool(self.user)

    def who(self) -> dict[str, str]:
        """For the audit log."""
        if self.key:
            return {"keyId": self.key, "keyName": self.key_name}
        return {"userId": self.user, "email": self.email}

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Forbidden(
                f"this needs the {permission!r} permission, which "
                + (f"the key {self.key_name!r} lacks" if self.key else f"a {self.role} lacks"),
                code="forbidden",
                details={"needs": permission},
            )


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


class Access:
    """Resolves callers. Nothing is cached: a revoked key, a removed member or a changed
    role takes effect on the next request, in every process."""

    def __init__(self, db: Database, rates: KeyRates | None = None) -> None:
        """``rates``: each key's requests a minute (none: keys are not limited)."""
        self.db = db
        self.rates = rates
        self._used: dict[str, float] = {}

    async def for_person(
        self, user: str, email: str, wanted: str | None, address: str = ""
    ) -> Caller:
        """The person in ``wanted`` (a header, a claim or the console's choice), else in
        their own workspace, else in the first they joined."""
        if wanted:
            found = await membership(self.db, wanted, user)
            if found is None:
                raise Forbidden(
                    f"you are not a member of workspace {wanted!r}", code="not_a_member"
                )
            return self._person(found.workspace, found.role, user, email, address)
        own = await membership(self.db, user, user)
        if own is not None:
            return self._person(own.workspace, own.role, user, email, address)
        joined = await memberships_of(self.db, user)
        if joined:
            return self._person(joined[0].workspace, joined[0].role, user, email, address)
        return Caller("", frozenset(), user=user, email=email, address=address)

    def among(
        self, joined: list[Membership], user: str, email: str, wanted: str, address: str = ""
    ) -> Caller:
        """As ``for_person``, from the person's memberships already read (the console
        reads them for its switcher): ``wanted`` when they are still a member there,
        else their own workspace, else the first they joined."""
        found = next((m for m in joined if m.workspace == wanted), None)
        found = found or next((m for m in joined if m.workspace == user), None)
        found = found or (joined[0] if joined else None)
        if found is None:
            return Caller("", frozenset(), user=user, email=email, address=address)
        return self._person(found.workspace, found.role, user, email, address)

    @staticmethod
    def _person(workspace: str, role: str, user: str, email: str, address: str) -> Caller:
        return Caller(workspace, ROLES.get(role, frozenset()), role, user, email, address=address)

    async def for_key(self, key: str, address: str = "") -> Caller:
        doc = await self.db.api_keys.find_one({"hash": key_hash(key)})
        if doc is None:
            raise Unauthorized("unknown API key")
        if doc.get("revokedAt"):
            raise Unauthorized("this API key was revoked")
        expires = doc.get("expiresAt")
        if expires is not None and expires.replace(tzinfo=UTC) <= datetime.now(UTC):
            raise Unauthorized("this API key has expired")
        key_id = str(doc["_id"])
        await self._note_use(key_id, address)
        if self.rates is not None:
            await self.rates.take(key_id)
        return Caller(
            doc["userId"],
            frozenset(doc.get("scopes", ())),
            key=key_id,
            key_name=doc.get("name", ""),
            address=address,
        )

    async def _note_use(self, key_id: str, address: str) -> None:
        now = time.monotonic()
        if now - self._used.get(key_id, -LAST_USED_EVERY) < LAST_USED_EVERY:
            return
        self._used[key_id] = now
        if len(self._used) > 10_000:
            self._used.clear()
        await self.db.api_keys.update_one(
            {"_id": ObjectId(key_id)},
            {"$set": {"lastUsedAt": datetime.now(UTC), "lastUsedFrom": address}},
        )
