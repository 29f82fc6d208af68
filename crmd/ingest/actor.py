"""The ingest actor: the stream worker with a handler that persists upload chunks."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import structlog

from crmd.ingest import chunks
from crmd.ingest.persist import mark_failed, persist_chunk
from crmd.runtime.context import Runtime
from crmd.streams import GROUP, consumer_name
from crmd.streams.actor import StreamActor
from crmd.streams.worker import Entry, StreamWorker

log = structlog.get_logger(__name__)


def ingest_actor(runtime: Runtime) -> StreamActor:
    async def persist(entries: Sequence[Entry]) -> None:
        for entry in entries:
            await persist_chunk(runtime.db, chunks.decode(entry.fields[chunks.FIELD]))

    async def give_up(entry: Entry, reason: str) -> None:
        try:
            chunk = chunks.decode(entry.fields[chunks.FIELD])
        except (KeyError, msgspec.DecodeError):
            return  # not a chunk of ours: nothing to mark
        await mark_failed(runtime.db, chunk, f"chunk {chunk.seq} could not be stored: {reason}")

    # One chunk (500 rows, about half a second of database time) to a read, acked as
    # soon as it is stored: a crash or a restart redoes at most the chunk in hand.
    settings = msgspec.structs.replace(runtime.config.streams, batch_size=1)
    worker = StreamWorker(
        runtime.redis, runtime.streams.ingest, GROUP, consumer_name(runtime.config.streams),
        persist, settings, runtime.metrics, on_dead=give_up,
    )  # fmt: skip
    return StreamActor("ingest", worker)
