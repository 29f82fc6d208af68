"""The dispatch actor: the stream worker with a handler that plans and sends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.campaigns import jobs
from crmd.campaigns.cap import FrequencyCap
from crmd.campaigns.dispatch import cancel_unsent, mark_sent_if_done, send_chunk
from crmd.campaigns.lifecycle import Action
from crmd.campaigns.planning import plan
from crmd.campaigns.stats import mark_for_recount
from crmd.campaigns.transitions import move
from crmd.campaigns.vendors import RateLimits, Vendors
from crmd.config import StreamsConfig
from crmd.store.tenant import TenantStore
from crmd.streams import GROUP, consumer_name
from crmd.streams.actor import StreamActor
from crmd.streams.worker import Entry, StreamWorker
from crmd.suppressions.links import UnsubscribeLinks
from crmd.telemetry.metrics import Metrics
from crmd.verp import ReturnPaths


def dispatch_actor(
    db: AsyncDatabase[dict[str, Any]],
    redis: Redis,
    stream: str,
    vendors: Vendors,
    settings: StreamsConfig,
    metrics: Metrics,
    limits: RateLimits,
    links: UnsubscribeLinks | None = None,
    recounts: str | None = None,
    return_paths: ReturnPaths | None = None,
    cap: FrequencyCap | None = None,
) -> StreamActor:
    """``recounts``: the receipts actor's recount marks (``receipts.actor.recount_key``),
    where a campaign whose messages were recorded SENT at hand-over is marked
    (``stats.mark_for_recount``), as a receipt would mark it, so that its stats move
    while it sends. ``return_paths``: the envelope senders that name each message, when
    the bounces listener is on (``crmd.verp``)."""

    async def handle(entries: Sequence[Entry]) -> None:
        for entry in entries:
            job = jobs.decode(entry.fields[jobs.FIELD])
            store = TenantStore(db, job.user)
            if job.kind == "plan":
                await plan(store, redis, stream, job, vendors, links)
            elif job.kind == "cancel":
                await cancel_unsent(store, job.campaign)
            else:
                sent = await send_chunk(
                    store, vendors, limits, job, entry.deliveries, links, return_paths, cap
                )
                if sent and recounts:
                    await mark_for_recount(redis, recounts, {(job.user, job.campaign)})
                if await jobs.finished(redis, stream, job):
                    await mark_sent_if_done(store, job.campaign)

    async def give_up(entry: Entry, reason: str) -> None:
        try:
            job = jobs.decode(entry.fields[jobs.FIELD])
        except (KeyError, msgspec.DecodeError):
            return
        campaigns = TenantStore(db, job.user)["campaigns"]
        await move(
            campaigns,
            ObjectId(job.campaign),
            Action.FAIL,
            reason=f"{job.kind} failed: {reason}"[:1000],
        )

    # One entry at a time: a chunk takes seconds to send, and entries waiting in a
    # consumer's hand would look idle to the others, which would take them over.
    one_at_a_time = msgspec.structs.replace(settings, batch_size=1)
    worker = StreamWorker(
        redis,
        stream,
        GROUP,
        consumer_name(settings),
        handle,
        one_at_a_time,
        metrics,
        on_dead=give_up,
    )
    return StreamActor("dispatch", worker)
