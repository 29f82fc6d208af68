"""``emit``: the one call the rest of crmd makes to tell webhooks of an event.

Cheap when the tenant has no webhook for the kind (one Redis round trip,
``crmd.webhooks.subscribers``). Otherwise one delivery document per subscribed webhook
is inserted before ``emit`` returns, so the event outlives a crash from then on; the
clock delivers it (``crmd.webhooks.deliver``). A delivery's ``_id`` is derived from the
webhook and the event's id, so an event emitted twice with the same id (a batch redone
after a crash) is delivered once."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis

from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new
from crmd.webhooks import subscribers
from crmd.webhooks.kinds import KINDS

log = structlog.get_logger(__name__)
DEFAULT_PREFIX = "crmd"


@dataclass(frozen=True)
class Event:
    data: Mapping[str, Any]
    id: str = ""
    """Stable for the same happening (``<log id>:delivered``); empty: a fresh one."""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def delivery_id(webhook_id: str, event_id: str) -> str:
    digest = hashlib.sha256(f"{webhook_id}\0{event_id}".encode()).hexdigest()[:32]
    return f"msg_{digest}"


def payload(kind: str, event: Event) -> bytes:
    """The body every attempt of the delivery posts: ``{type, timestamp, data}``."""
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
    return msgspec.json.encode({"type": kind, "timestamp": at, "data": dict(event.data)})


def delivery(user: str, webhook_id: str, kind: str, event: Event, now: datetime) -> dict[str, Any]:
    event_id = event.id or secrets.token_hex(16)
    return {
        "_id": delivery_id(webhook_id, event_id),
        "userId": user,
        "webhookId": webhook_id,
        "type": kind,
        "eventId": event_id,
        "payload": payload(kind, event).decode(),
        "status": "pending",
        "attempts": 0,
        "nextAt": now,
        "createdAt": now,
    }


async def emit(
    store: TenantStore,
    redis: Redis,
    kind: str,
    data: Mapping[str, Any],
    *,
    event_id: str = "",
    prefix: str = DEFAULT_PREFIX,
) -> int:
    """Tell the tenant's webhooks for ``kind`` that it happened; returns how many
    deliveries were recorded (0: nobody listens, or this event id was emitted before).
    ``event_id``: the same id for the same happening makes a repeat a no-op."""
    return await emit_many(store, redis, kind, [Event(data, event_id)], prefix=prefix)


async def emit_many(
    store: TenantStore,
    redis: Redis,
    kind: str,
    events: Sequence[Event],
    *,
    prefix: str = DEFAULT_PREFIX,
) -> int:
    """``emit`` for many events of one kind and tenant: one read, one insert."""
    if kind not in KINDS:
        raise ValueError(f"unknown webhook event kind {kind!r}")
    if not events or not await subscribers.wants(store, redis, prefix, kind):
        return 0
    hooks = store["webhooks"].find({"enabled": True, "events": kind}, projection={"_id": 1})
    ids = [str(doc["_id"]) async for doc in hooks]
    if not ids:
        return 0
    now = datetime.now(UTC)
    docs = [delivery(store.user_id, h, kind, e, now) for e in events for h in ids]
    existing = await insert_new(store["webhook_deliveries"].insert_many(docs, ordered=False))
    recorded = len(docs) - len(existing)
    log.info("webhook.emitted", user_id=store.user_id, kind=kind, deliveries=recorded)
    return recorded
