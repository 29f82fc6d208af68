"""The receipts actor: the stream worker with the batched reconciliation handler.

A campaign's stats are recounted from all its logs (about 1.5 s for 100k on
SecantusDB), so the recount is not done after every batch: each batch marks the
campaigns it touched in a Redis hash before it is acked, and the marked campaigns are
recounted once the stream is worked through (or every MAX_STALE_SECONDS while it is
not). The marks outlive a crash, and a mark is only cleared if no batch marked it again
while its recount ran, so no receipt's effect on the stats can be lost.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.campaigns.stats import mark_for_recount
from crmd.config import StreamsConfig
from crmd.receipts import batch
from crmd.receipts.apply import apply_receipts, recount_stats
from crmd.receipts.soft import DEFAULT_RULE, SoftBounceRule
from crmd.streams import GROUP, consumer_name
from crmd.streams.actor import StreamActor
from crmd.streams.worker import Entry, StreamWorker
from crmd.telemetry.metrics import Metrics

APPLY_EVENTS = 5_000
READ_ENTRIES = 100
MAX_STALE_SECONDS = 30.0
"""While receipts keep coming faster than they are applied, stats are still recounted
this often."""
RECOUNT_GAP = 1.0
"""Seconds between two recounts: a trickle of receipts, one per post, catches up after
nearly every one, and a recount reads every log of the campaign. A mark left by the
gap is recounted at the next caught-up read, at most ``streams.block_ms`` later."""

# Clear each mark only if it still has the version that was recounted.
_CLEAR = """
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 0
"""


def recount_key(stream: str) -> str:
    return f"{stream}:recount"


async def recount_marked(db: AsyncDatabase[dict[str, Any]], redis: Redis, key: str) -> int:
    """Recount every marked campaign; returns how many."""
    marks = await redis.hgetall(key)
    if not marks:
        return 0
    pairs = set()
    for member in marks:
        user, campaign = (member.decode() if isinstance(member, bytes) else member).split(":", 1)
        pairs.add((user, campaign))
    await recount_stats(db, pairs)
    versions = [part for m, version in marks.items() for part in (m, version)]
    await redis.eval(_CLEAR, 1, key, *versions)
    return len(marks)


def receipts_actor(
    db: AsyncDatabase[dict[str, Any]],
    redis: Redis,
    stream: str,
    settings: StreamsConfig,
    metrics: Metrics,
    soft: SoftBounceRule = DEFAULT_RULE,
    on_applied: Callable[[list[batch.ReceiptBatch]], Awaitable[object]] | None = None,
) -> StreamActor:
    """``soft``: when soft bounces suppress an address (``[bounces]``). ``on_applied``:
    told of each group once it is applied and before it is acked (webhooks' message
    outcomes), so that a crash in between redoes it."""
    key = recount_key(stream)
    oldest_unrecounted: float | None = None
    last_recount = -RECOUNT_GAP

    async def recount() -> None:
        nonlocal oldest_unrecounted, last_recount
        if time.monotonic() - last_recount < RECOUNT_GAP:
            return
        if await recount_marked(db, redis, key):
            last_recount = time.monotonic()
        oldest_unrecounted = None

    async def apply(entries: list[Entry], group: list[batch.ReceiptBatch]) -> bool:
        """Apply a group, mark its campaigns, and ack its entries at once: a read may
        hold a million receipts (100 callbacks of 10,000), far more than one handler's
        deadline allows, and what is acked here is not redone after a timeout."""
        touched = await apply_receipts(db, metrics, group, recount=False, soft=soft)
        await mark_for_recount(redis, key, touched)
        if on_applied is not None:
            await on_applied(group)
        await redis.xack(stream, GROUP, *(e.id for e in entries))
        return bool(touched)

    async def handle(entries: Sequence[Entry]) -> None:
        nonlocal oldest_unrecounted
        touched = False
        held: list[Entry] = []
        group: list[batch.ReceiptBatch] = []
        events = 0
        for entry in entries:  # applied APPLY_EVENTS at a time: memory stays flat
            held.append(entry)
            group.append(batch.decode(entry.fields[batch.FIELD]))
            events += len(group[-1].events)
            if events >= APPLY_EVENTS:
                touched |= await apply(held, group)
                held, group, events = [], [], 0
        if group:
            touched |= await apply(held, group)
        if touched and oldest_unrecounted is None:
            oldest_unrecounted = time.monotonic()
        if oldest_unrecounted and time.monotonic() - oldest_unrecounted > MAX_STALE_SECONDS:
            await recount()

    # A callback may carry up to 10,000 receipts: fewer entries to a read than elsewhere.
    fewer = msgspec.structs.replace(settings, batch_size=min(settings.batch_size, READ_ENTRIES))
    worker = StreamWorker(
        redis,
        stream,
        GROUP,
        consumer_name(settings),
        handle,
        fewer,
        metrics,
        on_caught_up=recount,
    )
    return StreamActor("receipts", worker)
