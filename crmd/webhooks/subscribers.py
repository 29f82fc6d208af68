"""Which tenants subscribe to which kind, kept in Redis so that ``emit`` costs one
round trip when nobody listens.

One set per kind (``<prefix>:webhooks:<kind>``) holds the tenants with an enabled
webhook for it. Each change to a tenant's webhooks rewrites that tenant's membership
from MongoDB, the truth. The sets are only trusted while the marker key exists: Redis
lost or flushed, the marker is gone, and readers fall back to MongoDB until the clock
rebuilds the sets (``rebuild``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.store.tenant import TenantStore
from crmd.webhooks.kinds import KINDS


def kind_key(prefix: str, kind: str) -> str:
    return f"{prefix}:webhooks:{kind}"


def marker_key(prefix: str) -> str:
    return f"{prefix}:webhooks:built"


async def kinds_of(store: TenantStore) -> set[str]:
    """The kinds the tenant has an enabled webhook for, from MongoDB."""
    found = store["webhooks"].find({"enabled": True}, projection={"events": 1})
    return {kind async for doc in found for kind in doc.get("events", [])}


async def refresh(
    db: AsyncDatabase[dict[str, Any]], store: TenantStore, redis: Redis, prefix: str
) -> None:
    """Rewrite the tenant's membership after a change to its webhooks (all the sets,
    when they are not built yet)."""
    if not await redis.exists(marker_key(prefix)):
        await rebuild(db, redis, prefix)
        return
    kinds = await kinds_of(store)
    async with redis.pipeline(transaction=True) as pipe:
        for kind in KINDS:
            if kind in kinds:
                pipe.sadd(kind_key(prefix, kind), store.user_id)
            else:
                pipe.srem(kind_key(prefix, kind), store.user_id)
        await pipe.execute()


async def wants(store: TenantStore, redis: Redis, prefix: str, kind: str) -> bool:
    """Whether the tenant has an enabled webhook for ``kind``."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(marker_key(prefix))
        pipe.sismember(kind_key(prefix, kind), store.user_id)
        built, member = await pipe.execute()
    if built:
        return bool(member)
    return kind in await kinds_of(store)


async def tenants_for(
    db: AsyncDatabase[dict[str, Any]], redis: Redis, prefix: str, kind: str
) -> set[str]:
    """Every tenant with an enabled webhook for ``kind`` (usually none or few)."""
    if not await redis.exists(marker_key(prefix)):
        await rebuild(db, redis, prefix)
    return {
        m.decode() if isinstance(m, bytes) else m
        for m in await redis.smembers(kind_key(prefix, kind))
    }


async def rebuild(db: AsyncDatabase[dict[str, Any]], redis: Redis, prefix: str) -> int:
    """Every set from MongoDB (across tenants, on purpose), then the marker; returns
    how many tenants have an enabled webhook. Run by the clock when the marker is
    missing."""
    members: dict[str, set[str]] = defaultdict(set)
    async for doc in db.webhooks.find({"enabled": True}, projection={"events": 1, "userId": 1}):
        for kind in doc.get("events", []):
            members[kind].add(doc["userId"])
    async with redis.pipeline(transaction=True) as pipe:
        for kind in KINDS:
            pipe.delete(kind_key(prefix, kind))
            if members[kind]:
                pipe.sadd(kind_key(prefix, kind), *sorted(members[kind]))
        pipe.set(marker_key(prefix), "1")
        await pipe.execute()
    return len({user for users in members.values() for user in users})


async def ensure_built(db: AsyncDatabase[dict[str, Any]], redis: Redis, prefix: str) -> int:
    """The clock's step: rebuild the sets only when the marker is missing."""
    if await redis.exists(marker_key(prefix)):
        return 0
    return await rebuild(db, redis, prefix)
