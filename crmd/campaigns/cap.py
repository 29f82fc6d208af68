"""The frequency cap: at most ``[flows] max_messages_per_customer_per_day`` marketing
messages to one customer in a day (UTC), campaigns and flows together.

Each message is counted as it is about to be handed over, in a Redis set per customer
and day holding the messages' ids: a message counted already (a chunk sent again
after a crash) passes again without counting twice, and the check and the count are
one script, so two processes sending to one customer at once cannot both take the
last place. A message over the cap is never sent: its log is SUPPRESSED with the cap
as its reason. A message counted and then refused by the vendor still counts (the cap
errs towards fewer messages). Transactional messages (``POST /api/v1/messages`` with
``kind: transactional``) are neither counted nor capped.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis

from crmd.campaigns import chunks
from crmd.campaigns.held import suppressed_fields
from crmd.messages import FINAL_RANK
from crmd.store.documents import Campaign, Doc
from crmd.store.tenant import TenantStore

log = structlog.get_logger(__name__)

_TAKE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
KEEP_SECONDS = 2 * 86_400


class FrequencyCap:
    def __init__(self, redis: Redis, prefix: str, per_day: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.per_day = per_day
        self._take = redis.register_script(_TAKE)

    def key(self, user: str, customer: str, now: datetime) -> str:
        return f"{self.prefix}:cap:{user}:{customer}:{now.astimezone(UTC):%Y%m%d}"

    async def allowed(self, user: str, todo: list[Doc], now: datetime) -> list[bool]:
        """Whether each message may go, counting those that may."""
        answers = []
        for doc in todo:
            key = self.key(user, str(doc.get("customerId", "")), now)
            args: list[str | int] = [str(doc["_id"]), self.per_day, KEEP_SECONDS]
            answers.append(bool(await self._take(keys=[key], args=args)))
        return answers

    async def sent_today(self, user: str, customer: str, now: datetime) -> int:
        return int(await self.redis.scard(self.key(user, customer, now)))


async def without_capped(
    store: TenantStore,
    cap: FrequencyCap | None,
    campaign: Campaign,
    todo: list[Doc],
    fresh: bool,
    transactional: bool = False,
) -> list[Doc]:
    """``todo`` less the messages over the cap, whose logs become SUPPRESSED (new ones
    for a chunk's entries, ``fresh``; updated ones for logs waiting to be sent)."""
    if cap is None or cap.per_day <= 0 or transactional or not todo:
        return todo
    now = datetime.now(UTC)
    allowed = await cap.allowed(store.user_id, todo, now)
    over = [d for d, ok in zip(todo, allowed, strict=True) if not ok]
    if not over:
        return todo
    why = f"frequency cap: {cap.per_day} messages to this customer today"
    if fresh:
        campaign_id, vendor = str(campaign.id), campaign.vendor
        logs = [chunks.suppressed_log(d, campaign_id, vendor, now, why) for d in over]
        new, _ = await chunks.insert_logs(store, logs)
        await store.add_to_tally("messages", new)
    else:
        await store["communication_log"].bulk_update(
            [
                (
                    {"_id": d["_id"], "rank": {"$lt": FINAL_RANK}},
                    {"$set": suppressed_fields(why, now)},
                )
                for d in over
            ]
        )
    log.info("campaign.capped", campaign_id=str(campaign.id), capped=len(over))
    return [d for d, ok in zip(todo, allowed, strict=True) if ok]
