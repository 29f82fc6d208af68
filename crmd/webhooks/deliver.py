"""Delivering: one attempt (sign, post, judge the answer) and the clock's step that
makes the due attempts.

Several crmd processes may run this step (the clock's lease makes one the usual
case, not the only one). Each attempt is claimed first by a conditional update on the
delivery's attempt count and due time, which also moves its due time past the attempt's
timeout: a process that dies mid-attempt leaves it due again a little later, and no
two processes ever make the same attempt. An attempt's result is recorded only if the
claim still stands."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from crmd.config import WebhooksConfig
from crmd.webhooks import policy, signing
from crmd.webhooks.urls import is_private_address, is_private_host

log = structlog.get_logger(__name__)
AT_ONCE = 10
"""Attempts in flight at once in one step."""
CLAIM_MARGIN = timedelta(seconds=30)


@dataclass(frozen=True)
class Answer:
    """What an endpoint did with one attempt."""

    status: int | None
    """Its HTTP status; None when there was no answer (timeout, refused, bad host)."""
    body: str
    latency_ms: int
    error: str = ""

    @property
    def delivered(self) -> bool:
        return policy.delivered(self.status)


async def resolves_privately(url: str) -> bool:
    """Whether the URL's host is, or resolves to, a private or local address."""
    parts = urlsplit(url)
    if is_private_host(parts):
        return True
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    return any(is_private_address(ipaddress.ip_address(info[4][0])) for info in infos)


async def attempt(
    http: aiohttp.ClientSession,
    url: str,
    secret: str,
    message_id: str,
    body: bytes,
    settings: WebhooksConfig,
) -> Answer:
    """Post one signed attempt; never raises for the endpoint's sake."""
    started = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        if not settings.allow_private and await resolves_privately(url):
            return Answer(None, "", took(), "the URL's host is a private address")
        headers = signing.headers(secret, message_id, int(time.time()), body)
        timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        async with http.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            answer = await response.content.read(policy.RESPONSE_BYTES)
            return Answer(response.status, policy.cut(answer), took())
    except TimeoutError:
        return Answer(None, "", took(), f"no answer within {settings.timeout_seconds:g} s")
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Answer(None, "", took(), f"{type(exc).__name__}: {exc}"[:300])


def result_update(
    answer: Answer, attempts: int, max_attempts: int, now: datetime
) -> dict[str, Any]:
    """The delivery's fields after an attempt: delivered, due again, or given up."""
    recorded = {
        "lastAt": now,
        "responseStatus": answer.status,
        "responseBody": answer.body,
        "latencyMs": answer.latency_ms,
        "error": answer.error,
    }
    if answer.delivered:
        return {**recorded, "status": "delivered", "nextAt": None}
    again = policy.retry_at(attempts, max_attempts, now)
    return {**recorded, "status": "pending" if again else "failed", "nextAt": again}


async def claim(
    db: AsyncDatabase[dict[str, Any]], doc: dict[str, Any], now: datetime, timeout: float
) -> bool:
    """Take the delivery's next attempt, unless another process took it first."""
    hold = now + timedelta(seconds=timeout) + CLAIM_MARGIN
    claimed = await db.webhook_deliveries.update_one(
        {
            "_id": doc["_id"],
            "status": "pending",
            "attempts": doc["attempts"],
            "nextAt": {"$lte": now},
        },
        {"$set": {"nextAt": hold}, "$inc": {"attempts": 1}},
    )
    return claimed.modified_count == 1


async def deliver_due(
    db: AsyncDatabase[dict[str, Any]],
    http: aiohttp.ClientSession,
    settings: WebhooksConfig,
    now: datetime,
) -> int:
    """The clock's step: make up to ``settings.batch`` due attempts; returns how many
    were made."""
    due = [
        d
        async for d in db.webhook_deliveries.find(
            {"status": "pending", "nextAt": {"$lte": now}},
            sort=[("nextAt", 1)],
            limit=settings.batch,
        )
    ]
    if not due:
        return 0
    hooks = {
        str(h["_id"]): h
        async for h in db.webhooks.find(
            {"_id": {"$in": sorted({ObjectId(d["webhookId"]) for d in due})}},
            projection={"url": 1, "secret": 1, "enabled": 1, "userId": 1},
        )
    }
    slots = asyncio.Semaphore(AT_ONCE)

    async def one(doc: dict[str, Any]) -> bool:
        hook = hooks.get(doc["webhookId"])
        if hook is None or not hook.get("enabled") or hook["userId"] != doc["userId"]:
            await db.webhook_deliveries.update_one(
                {"_id": doc["_id"], "status": "pending"},
                {"$set": {"status": "cancelled", "nextAt": None, "error": "webhook disabled"}},
            )
            return False
        async with slots:
            if not await claim(db, doc, now, settings.timeout_seconds):
                return False
            await deliver_claimed(db, http, settings, hook, doc, doc["attempts"] + 1)
            return True

    made = await asyncio.gather(*(one(d) for d in due))
    return sum(made)


async def deliver_claimed(
    db: AsyncDatabase[dict[str, Any]],
    http: aiohttp.ClientSession,
    settings: WebhooksConfig,
    hook: dict[str, Any],
    doc: dict[str, Any],
    attempts: int,
) -> Answer:
    """Make the claimed attempt number ``attempts`` and record its result."""
    answer = await attempt(
        http, hook["url"], hook["secret"], doc["_id"], doc["payload"].encode(), settings
    )
    now = datetime.now(UTC)
    change = result_update(answer, attempts, settings.max_attempts, now)
    await db.webhook_deliveries.update_one(
        {"_id": doc["_id"], "attempts": attempts, "status": "pending"}, {"$set": change}
    )
    await note_health(db, hook, answer.delivered, change["status"] == "failed", now, settings)
    log.info(
        "webhook.attempted",
        user_id=doc["userId"],
        webhook_id=doc["webhookId"],
        delivery_id=doc["_id"],
        attempt=attempts,
        status=answer.status,
        outcome=change["status"],
        latency_ms=answer.latency_ms,
    )
    return answer


async def note_health(
    db: AsyncDatabase[dict[str, Any]],
    hook: dict[str, Any],
    delivered: bool,
    given_up: bool,
    now: datetime,
    settings: WebhooksConfig,
) -> bool:
    """Keep when the webhook started failing (``failingSince``, cleared by a success);
    turn it off when a delivery is given up after ``disable_after_days`` of nothing but
    failures. Writes only when that changes. True when it was turned off."""
    hooks = db.webhooks
    if delivered:
        await hooks.update_one(
            {"_id": hook["_id"], "failingSince": {"$exists": True}},
            {"$unset": {"failingSince": ""}},
        )
        return False
    await hooks.update_one(
        {"_id": hook["_id"], "failingSince": {"$exists": False}}, {"$set": {"failingSince": now}}
    )
    if not given_up or not settings.disable_after_days:
        return False
    since = now - timedelta(days=settings.disable_after_days)
    off = await hooks.update_one(
        {"_id": hook["_id"], "enabled": True, "failingSince": {"$lte": since}},
        {"$set": {"enabled": False, "disabledReason": "failing", "updatedAt": now}},
    )
    if not off.modified_count:
        return False
    await db.webhook_deliveries.update_many(
        {"webhookId": str(hook["_id"]), "status": "pending"},
        {"$set": {"status": "cancelled", "nextAt": None, "error": "webhook turned off: failing"}},
    )
    log.warning(
        "webhook.turned_off", user_id=hook["userId"], webhook_id=str(hook["_id"]), since=since
    )
    return True


async def send_now(
    db: AsyncDatabase[dict[str, Any]],
    http: aiohttp.ClientSession,
    settings: WebhooksConfig,
    hook: dict[str, Any],
    doc: dict[str, Any],
) -> Answer:
    """Deliver a fresh delivery at once, once (the test button): it is recorded as
    claimed, so the clock leaves it alone, and it is not tried again."""
    now = datetime.now(UTC)
    hold = now + timedelta(seconds=settings.timeout_seconds) + CLAIM_MARGIN
    await db.webhook_deliveries.insert_one({**doc, "attempts": 1, "nextAt": hold})
    one_try = WebhooksConfig(**{**_fields(settings), "max_attempts": 1})
    return await deliver_claimed(db, http, one_try, hook, doc, 1)


def _fields(settings: WebhooksConfig) -> dict[str, Any]:
    return {f: getattr(settings, f) for f in settings.__struct_fields__}
