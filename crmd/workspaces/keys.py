"""A workspace's API keys: made (the key answered once), listed, revoked.

A key is ``crmd_`` and 43 random url-safe characters (``crmd.workspaces.access``);
crmd stores its SHA-256 and its first characters (to recognise it in a list), never
the key. A key holds scopes, a subset of read, write, send and import, and may expire;
revoking it takes effect on the next request, in every process, since every request
with a key reads its document (``Access.for_key``). Every read and write goes through
the workspace's tenant store, so another workspace's key is simply not found."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import structlog
from pymongo import ReturnDocument

from crmd.config import parse_duration
from crmd.errors import Conflict, NotFound, Unprocessable
from crmd.store.tenant import TenantStore, object_id
from crmd.workspaces.access import key_hash, new_key
from crmd.workspaces.roles import SCOPES
from crmd.workspaces.schema import ApiKey, CreatedKey, CreateKey, KeyMaker, KeyState, Scope

log = structlog.get_logger(__name__)
COLLECTION = "api_keys"
LONGEST = timedelta(days=731)
"""The furthest a key's expiry may be: two years (and a day, for a leap year)."""
PREFIX_SHOWN = 12
"""``crmd_`` and 7 characters: enough to tell a workspace's keys apart, far too few to
guess the rest."""
LISTED = 500


def _utc(at: Any) -> Any:
    return at.replace(tzinfo=UTC) if isinstance(at, datetime) and at.tzinfo is None else at


def state_of(doc: dict[str, Any], now: datetime) -> KeyState:
    if doc.get("revokedAt"):
        return "revoked"
    expires = _utc(doc.get("expiresAt"))
    return "expired" if expires is not None and expires <= now else "live"


def as_key(doc: dict[str, Any], now: datetime) -> ApiKey:
    return ApiKey(
        id=str(doc["_id"]),
        name=doc["name"],
        scopes=list(doc["scopes"]),
        prefix=doc["prefix"],
        state=state_of(doc, now),
        createdAt=_utc(doc["createdAt"]),
        createdBy=msgspec.convert(doc.get("createdBy") or {"via": "api"}, KeyMaker),
        expiresAt=_utc(doc.get("expiresAt")),
        lastUsedAt=_utc(doc.get("lastUsedAt")),
        lastUsedFrom=doc.get("lastUsedFrom") or "",
        revokedAt=_utc(doc.get("revokedAt")),
    )


def checked(body: CreateKey, now: datetime) -> tuple[str, list[Scope], datetime | None]:
    """The name (trimmed), the scopes (once each, in their order) and the expiry of a
    key to make: 422 naming the field for a blank or unprintable name, an expiry
    passed or more than two years away."""
    name = body.name.strip()
    if not name:
        raise Unprocessable("a key needs a name", details={"field": "$.name"})
    if not name.isprintable():
        raise Unprocessable(
            "a key's name may not hold control characters", details={"field": "$.name"}
        )
    scopes = sorted(set(body.scopes), key=SCOPES.index)
    expires = body.expiresAt
    if expires is not None:
        # Compared before converted: year 1 at +01:00 has no UTC moment to convert to.
        if expires <= now:
            raise Unprocessable("expiresAt must be in the future", details={"field": "$.expiresAt"})
        if expires > now + LONGEST:
            raise Unprocessable(
                "expiresAt may be at most two years away", details={"field": "$.expiresAt"}
            )
        expires = expires.astimezone(UTC)
    return name, scopes, expires


def expiry(text: str, now: datetime) -> datetime | None:
    """An expiry as a person types it (``crmd keys --expires``, the console's date): a
    duration from now (``90d``, ``12h``, ``2w``), a day (``2027-06-30``: the key works
    through that day, to 23:59:59 UTC) or a moment (``2027-06-30T12:00:00+05:30``; UTC
    when it names no offset); empty or ``never``: no expiry. Whether it is in the future and
    near enough is ``checked``'s."""
    text = text.strip()
    if not text or text == "never":
        return None
    try:
        seconds = parse_duration(text)
        if isinstance(seconds, int):
            return now + timedelta(seconds=seconds)
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except OverflowError:  # 9999999999d
        raise Unprocessable(f"{text!r} is too far away", details={"field": "expiresAt"}) from None
    except ValueError:
        raise Unprocessable(
            f"{text!r} is neither a duration (90d, 12h), a day (2027-06-30) nor "
            "a moment (2027-06-30T12:00:00Z)",
            details={"field": "expiresAt"},
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def live(now: datetime) -> dict[str, Any]:
    """The filter of keys that still work."""
    return {"revokedAt": None, "$or": [{"expiresAt": None}, {"expiresAt": {"$gt": now}}]}


class Keys:
    def __init__(self, max_live: int) -> None:
        """``max_live``: the live keys a workspace may hold (``[keys] max_per_workspace``)."""
        self.max_live = max_live

    async def create(self, store: TenantStore, body: CreateKey, maker: KeyMaker) -> CreatedKey:
        """A new key; the answer is the only place its text is ever found. 409
        ``too_many_keys`` when the workspace holds ``max_live`` live keys already."""
        now = datetime.now(UTC)
        name, scopes, expires = checked(body, now)
        keys = store[COLLECTION]
        if await keys.count_documents(live(now)) >= self.max_live:
            raise Conflict(
                f"a workspace may hold at most {self.max_live} live API keys: revoke one first",
                code="too_many_keys",
            )
        key = new_key()
        doc = {
            "name": name,
            "scopes": scopes,
            "hash": key_hash(key),
            "prefix": key[:PREFIX_SHOWN],
            "createdAt": now,
            "createdBy": msgspec.to_builtins(maker),
            "expiresAt": expires,
            "revokedAt": None,
            "lastUsedAt": None,
            "lastUsedFrom": "",
        }
        made = await keys.insert_one(doc)
        log.info(
            "key.created",
            workspace=store.user_id,
            key_id=str(made.inserted_id),
            scopes=scopes,
            via=maker.via,
        )
        return CreatedKey(
            str(made.inserted_id), name, scopes, key[:PREFIX_SHOWN], expires, now, key
        )

    async def list(self, store: TenantStore) -> tuple[list[ApiKey], int]:
        """The newest ``LISTED`` keys, and how many the workspace has in all."""
        now = datetime.now(UTC)
        found = store[COLLECTION].find(
            {}, projection={"hash": 0}, sort=[("createdAt", -1)], limit=LISTED
        )
        items = [as_key(doc, now) async for doc in found]
        total = len(items) if len(items) < LISTED else await store[COLLECTION].count_documents()
        return items, total

    async def revoke(self, store: TenantStore, id_text: str, maker: KeyMaker) -> ApiKey:
        """The key, revoked now. 404 when there is no such key in the workspace, and
        when it was revoked already: a key is revoked once (its first revocation's
        time and author stay), and the audit log says so once."""
        now = datetime.now(UTC)
        done = await store[COLLECTION].find_one_and_update(
            {"_id": object_id(id_text, "API key"), "revokedAt": None},
            {"$set": {"revokedAt": now, "revokedBy": msgspec.to_builtins(maker)}},
            projection={"hash": 0},
            return_document=ReturnDocument.AFTER,
        )
        if done is None:
            raise NotFound(f"API key {id_text!r} not found, or revoked already")
        log.info("key.revoked", workspace=store.user_id, key_id=id_text, via=maker.via)
        return as_key(done, now)
