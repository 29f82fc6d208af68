"""The receipts actor: the stream worker with the batched reconciliation handler."""

from __future__ import annotations

from collections.abc import Sequence

from crmd.receipts import batch
from crmd.receipts.apply import apply_receipts
from crmd.runtime.context import Runtime
from crmd.streams import GROUP, consumer_name
from crmd.streams.actor import StreamActor
from crmd.streams.worker import Entry, StreamWorker


def receipts_actor(runtime: Runtime) -> StreamActor:
    async def handle(entries: Sequence[Entry]) -> None:
        await apply_receipts(
            runtime.db, runtime.metrics, [batch.decode(e.fields[batch.FIELD]) for e in entries]
        )

    worker = StreamWorker(
        runtime.redis, runtime.streams.receipts, GROUP, consumer_name(runtime.config.streams),
        handle, runtime.config.streams, runtime.metrics,
    )  # fmt: skip
    return StreamActor("receipts", worker)
