"""The tracking actor: the stream worker that applies clicks and opens in batches
(``crmd.receipts.hits``), marking their campaigns for the receipts actor to recount."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.campaigns.stats import mark_for_recount
from crmd.config import StreamsConfig
from crmd.receipts import hits
from crmd.streams import GROUP, consumer_name
from crmd.streams.actor import StreamActor
from crmd.streams.worker import Entry, StreamWorker
from crmd.telemetry.metrics import Metrics


def tracking_actor(
    db: AsyncDatabase[dict[str, Any]],
    redis: Redis,
    stream: str,
    recount_key: str,
    machine_seconds: float,
    settings: StreamsConfig,
    metrics: Metrics,
) -> StreamActor:
    keep = max(hits.KEEP_HITS, 2 * settings.batch_size)

    async def handle(entries: Sequence[Entry]) -> None:
        batch = [(entry.id, hits.decode(entry.fields[hits.FIELD])) for entry in entries]
        touched = await hits.apply_hits(db, batch, machine_seconds, keep)
        await mark_for_recount(redis, recount_key, touched)

    worker = StreamWorker(redis, stream, GROUP, consumer_name(settings), handle, settings, metrics)
    return StreamActor("tracking", worker)
