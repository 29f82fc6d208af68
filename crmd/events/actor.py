"""The events actor: the stream worker with a handler that stores posted events and
tells ``after_store`` of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.config import StreamsConfig
from crmd.events import model
from crmd.events.model import AfterStore, nothing_after_store
from crmd.events.store import Changed, _unchanged, store_events
from crmd.store.tenant import TenantStore
from crmd.streams import GROUP, consumer_name
from crmd.streams.actor import StreamActor
from crmd.streams.worker import Entry, StreamWorker
from crmd.telemetry.metrics import Metrics

ENTRIES_A_READ = 16
"""Requests' batches (each up to ``[events] max_batch`` events) handled per read."""


def events_actor(
    db: AsyncDatabase[dict[str, Any]],
    redis: Redis,
    stream: str,
    settings: StreamsConfig,
    metrics: Metrics,
    changed: Changed = _unchanged,
    after_store: AfterStore = nothing_after_store,
) -> StreamActor:
    """``after_store(store, events)`` is awaited once a batch's events are stored, with
    those stored for the first time; if it raises, the entry is not acknowledged and is
    delivered again, and its events told again (at least once)."""

    async def store_batches(entries: Sequence[Entry]) -> None:
        for entry in entries:
            batch = model.decode(entry.fields[model.FIELD])
            store = TenantStore(db, batch.user, majority=True)
            told = await store_events(store, batch.events, batch.numbers, changed)
            if told:
                await after_store(store, told)

    few = msgspec.structs.replace(settings, batch_size=min(settings.batch_size, ENTRIES_A_READ))
    worker = StreamWorker(
        redis, stream, GROUP, consumer_name(settings), store_batches, few, metrics
    )
    return StreamActor("events", worker)
