"""The dispatch actor: the stream worker with a handler that plans and sends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from bson import ObjectId

from crmd.campaigns import jobs
from crmd.campaigns.dispatch import mark_sent_if_done, plan, send_chunk
from crmd.campaigns.vendors import RateLimiter
from crmd.runtime.context import Runtime
from crmd.store.tenant import TenantStore
from crmd.streams import GROUP, consumer_name
from crmd.streams.actor import StreamActor
from crmd.streams.worker import Entry, StreamWorker


def dispatch_actor(runtime: Runtime) -> StreamActor:
    limiters: dict[str, RateLimiter] = {}

    async def handle(entries: Sequence[Entry]) -> None:
        for entry in entries:
            job = jobs.decode(entry.fields[jobs.FIELD])
            store = TenantStore(runtime.db, job.user)
            if job.kind == "plan":
                await plan(
                    store, runtime.redis, runtime.streams.dispatch, job.campaign, runtime.vendors
                )
            else:
                await send_chunk(store, runtime.vendors, limiters, job)
                if await jobs.finished(runtime.redis, runtime.streams.dispatch, job):
                    await mark_sent_if_done(store, job.campaign)

    async def give_up(entry: Entry, reason: str) -> None:
        try:
            job = jobs.decode(entry.fields[jobs.FIELD])
        except (KeyError, msgspec.DecodeError):
            return
        await TenantStore(runtime.db, job.user)["campaigns"].update_one(
            {"_id": ObjectId(job.campaign), "status": {"$nin": ["cancelled", "completed"]}},
            {"$set": {"status": "error", "reason": f"{job.kind} failed: {reason}"[:1000],
                      "updatedAt": datetime.now(UTC)}},
        )  # fmt: skip

    # One entry at a time: a chunk takes seconds to send, and entries waiting in a
    # consumer's hand would look idle to the others, which would take them over.
    settings = msgspec.structs.replace(runtime.config.streams, batch_size=1)
    worker = StreamWorker(
        runtime.redis, runtime.streams.dispatch, GROUP, consumer_name(runtime.config.streams),
        handle, settings, runtime.metrics, on_dead=give_up,
    )  # fmt: skip
    return StreamActor("dispatch", worker)
