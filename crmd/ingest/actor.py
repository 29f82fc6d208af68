"""The ingest actor: the stream worker with a handler that persists upload chunks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.config import StreamsConfig
from crmd.ingest import chunks
from crmd.ingest.finished import announce_done
from crmd.ingest.persist import OrdersWritten, mark_failed, no_order_events, persist_chunk
from crmd.segments.slices import CustomerVersions
from crmd.store.tenant import TenantStore
from crmd.streams import GROUP, consumer_name
from crmd.streams.actor import StreamActor
from crmd.streams.worker import Entry, StreamWorker
from crmd.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)


def ingest_actor(
    db: AsyncDatabase[dict[str, Any]],
    redis: Redis,
    stream: str,
    settings: StreamsConfig,
    metrics: Metrics,
    versions: CustomerVersions,
    orders_written: OrdersWritten = no_order_events,
    prefix: str = "crmd",
) -> StreamActor:
    """``orders_written``: told the orders each chunk wrote (where they raise their
    ``order`` events, ``crmd.events.orders.OrderEvents``). ``prefix``: the Redis keys'
    (webhooks' subscriptions, for ``import.done``)."""

    async def persist(entries: Sequence[Entry]) -> None:
        for entry in entries:
            chunk = chunks.decode(entry.fields[chunks.FIELD])
            if await persist_chunk(db, chunk, versions.changed, orders_written):
                store = TenantStore(db, chunk.user, majority=True)
                await announce_done(store, redis, prefix, chunk.upload)

    async def give_up(entry: Entry, reason: str) -> None:
        try:
            chunk = chunks.decode(entry.fields[chunks.FIELD])
        except (KeyError, msgspec.DecodeError):
            return  # not a chunk of ours: nothing to mark
        await mark_failed(db, chunk, f"chunk {chunk.seq} could not be stored: {reason}")

    # One chunk (500 rows, about half a second of database time) to a read, acked as
    # soon as it is stored: a crash or a restart redoes at most the chunk in hand.
    one_chunk = msgspec.structs.replace(settings, batch_size=1)
    worker = StreamWorker(
        redis,
        stream,
        GROUP,
        consumer_name(settings),
        persist,
        one_chunk,
        metrics,
        on_dead=give_up,
    )
    return StreamActor("ingest", worker)
