"""The flows actor: the stream worker whose entries are customers' states to run.

An entry names a state (``FlowJob``); handling it runs the state's steps until it
waits or leaves (``crmd.flows.engine``). Entries come from the events that enter
customers (``crmd.flows.intake``) and from the clock when waits end
(``crmd.flows.timers``). Any process running ``--actors flows`` takes its share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import structlog
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.config import StreamsConfig
from crmd.flows.engine import Engine
from crmd.store.tenant import TenantStore
from crmd.streams import GROUP, consumer_name
from crmd.streams.actor import StreamActor
from crmd.streams.worker import Entry, StreamWorker
from crmd.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)

FIELD = b"state"
AT_ONCE = 16
BATCH = 64
"""Customers' runs a flows actor takes on at once."""


class FlowJob(msgspec.Struct, array_like=True):
    state: str
    user: str


_encode = msgspec.msgpack.Encoder().encode
decode_job = msgspec.msgpack.Decoder(FlowJob).decode

Queue = Callable[[TenantStore, list[str]], Awaitable[None]]


def queue_states(redis: Redis, stream: str) -> Queue:
    """Queues states on the flows stream, in one round trip."""

    async def queue(store: TenantStore, states: list[str]) -> None:
        if not states:
            return
        async with redis.pipeline(transaction=False) as pipe:
            for state in states:
                pipe.xadd(stream, {FIELD: _encode(FlowJob(state, store.user_id))})
            await pipe.execute()

    return queue


def flows_actor(
    db: AsyncDatabase[dict[str, Any]],
    redis: Redis,
    stream: str,
    engine: Engine,
    settings: StreamsConfig,
    metrics: Metrics,
    detail: Callable[[], str] | None = None,
) -> StreamActor:
    async def run(entries: Sequence[Entry]) -> None:
        # Customers' runs are independent: several at once, so that the database's
        # round trips overlap (two jobs of one state are safe together: the engine).
        limit = asyncio.Semaphore(AT_ONCE)

        async def one(entry: Entry) -> None:
            job = decode_job(entry.fields[FIELD])
            async with limit:
                await engine.run(TenantStore(db, job.user), job.state)

        ran = await asyncio.gather(*(one(entry) for entry in entries), return_exceptions=True)
        failed = [r for r in ran if isinstance(r, BaseException)]
        if failed:  # after every run has ended: the batch is handled again, whole
            raise failed[0]
        if detail is not None:
            actor.detail = detail()

    # A few dozen states a read: a worker that dies redoes at most those, and the
    # states queued after them wait behind no more.
    batch = msgspec.structs.replace(settings, batch_size=min(settings.batch_size, BATCH))
    worker = StreamWorker(redis, stream, GROUP, consumer_name(settings), run, batch, metrics)
    actor = StreamActor("flows", worker)
    return actor
