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
from crmd.ingest.persist import mark_failed, persist_chunk
from crmd.segments.slices import CustomerVersions
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
) -> StreamActor:
    async def persist(entries: Sequence[Entry]) -> None:
        for entry in entries:
            await persist_chunk(db, chunks.decode(entry.fields[chunks.FIELD]), versions.changed)

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
