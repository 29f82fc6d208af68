"""The actors crmd runs, wired from its built parts: the stream workers, the clock and
its tasks, and the web servers (the API, or only the health routes on a worker).

``Crmd.start`` runs them by name; ``roles`` says which a process runs for the roles it
was given (``crmd serve --actors``).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from crmd.bounces.actor import BouncesActor
from crmd.bounces.inbox import Inbox
from crmd.campaigns import clock as campaign_clock
from crmd.campaigns.actor import dispatch_actor
from crmd.campaigns.vendors import RateLimits
from crmd.http.actor import HttpActor
from crmd.http.health import health_app
from crmd.ingest.actor import ingest_actor
from crmd.ingest.publish import recover_interrupted
from crmd.receipts.actor import receipts_actor, recount_key
from crmd.receipts.apply import rematch_unknown
from crmd.receipts.soft import SoftBounceRule
from crmd.receipts.tracking_actor import tracking_actor
from crmd.runtime.actor import Actor
from crmd.runtime.clock import ClockActor, Task
from crmd.runtime.lease import Lease, fence
from crmd.segments import service as segments
from crmd.segments.slices import CustomerVersions
from crmd.store.numbering import recount_stale
from crmd.suppressions.links import UnsubscribeLinks
from crmd.verp import ReturnPaths

if TYPE_CHECKING:
    from crmd.app import Crmd

ACTORS = ("ingest", "dispatch", "receipts", "tracking", "clock", "bounces", "http")
"""Every actor crmd runs, in the order they start (http last, so it stops first). The
bounces listener is built only when ``[bounces] host`` is set."""
HEALTH_ONLY = "health"
"""The actor that serves only /healthz, /readyz and /metrics, run in place of http by a
process without the API (a worker), so that it can still be watched."""


def build_actors(crmd: Crmd, plugin_actors: list[Actor]) -> dict[str, Actor]:
    config, db, redis, streams = crmd.config, crmd.db, crmd.redis, crmd.streams
    settings, metrics = config.streams, crmd.metrics

    async def start_due(now: Any) -> object:
        return await campaign_clock.start_due_campaigns(db, redis, streams.dispatch, now)

    async def stranded(now: Any) -> object:
        bound = config.campaigns.stranded_after_seconds
        return await campaign_clock.recover_stranded(db, redis, streams.dispatch, bound, now)

    soft = SoftBounceRule(config.bounces.soft_limit, config.bounces.soft_window_days)
    return_paths = bounce_addresses(crmd)

    async def rematch(now: Any) -> object:
        return await rematch_unknown(db, metrics, now, soft)

    async def close_windows(now: Any) -> object:
        window = config.campaigns.receipt_window_seconds
        return await campaign_clock.close_receipt_windows(db, window, now)

    async def interrupted_uploads(now: Any) -> object:
        return await recover_interrupted(db, redis, streams.ingest, now)

    async def segment_counts(now: Any) -> object:
        return await segments.refresh_stale_counts(crmd.counter, db, now)

    async def tallies(now: Any) -> object:
        return await recount_stale(db, now)

    clock_name = f"{config.redis.stream_prefix}:clock"
    tasks: list[tuple[str, Task]] = [
        ("start_due_campaigns", start_due),
        ("stranded_campaigns", stranded),
        ("rematch_receipts", rematch),
        ("close_receipt_windows", close_windows),
        ("interrupted_uploads", interrupted_uploads),
        ("segment_counts", segment_counts),
        ("tallies", tallies),
    ]
    server = config.server
    actors: list[Actor] = [
        ingest_actor(
            db,
            redis,
            streams.ingest,
            settings,
            metrics,
            CustomerVersions(redis, config.redis.stream_prefix),
        ),
        dispatch_actor(
            db,
            redis,
            streams.dispatch,
            crmd.vendors,
            settings,
            metrics,
            RateLimits(redis, config.redis.stream_prefix),
            UnsubscribeLinks.from_secret(
                crmd.jwt_secret, config.server.base_url, config.campaigns.tracking_days
            ),
            recount_key(streams.receipts),
            return_paths,
        ),
        receipts_actor(db, redis, streams.receipts, settings, metrics, soft),
        tracking_actor(
            db,
            redis,
            streams.tracking,
            recount_key(streams.receipts),
            config.campaigns.machine_open_seconds,
            settings,
            metrics,
        ),
        ClockActor(
            config.campaigns.clock_interval_seconds,
            tasks,
            Lease(redis, clock_name, config.campaigns.clock_lease_seconds),
            functools.partial(fence, db, clock_name),
        ),
        # Half the stop budget at most for requests in flight, so that the stream actors
        # always have time to finish and ack their batch.
        HttpActor(crmd.app, server.host, server.port, server.shutdown_timeout / 2),
        HttpActor(
            health_app(crmd.metrics, crmd.health), server.host, server.port, 1.0, name=HEALTH_ONLY
        ),
        *plugin_actors,
    ]
    if return_paths is not None:
        bounces = config.bounces
        message_domain = config.smtp_sender.rpartition("@")[2]
        inbox = Inbox(return_paths, message_domain, db, redis, streams.receipts, metrics)
        actors.append(BouncesActor(inbox, bounces.host, bounces.port, bounces.max_bytes))
    return {actor.name: actor for actor in actors}


def bounce_addresses(crmd: Crmd) -> ReturnPaths | None:
    """The envelope senders that name their message, when the bounces listener is on."""
    if not crmd.config.bounces.host:
        return None
    local, domain = crmd.config.bounce_sender
    return ReturnPaths.from_secret(crmd.jwt_secret, local, domain)


def roles(actors: Collection[str]) -> list[str]:
    """The actors a process runs for its configured roles: without the API, the health
    routes still answer on its port."""
    return [*actors] if "http" in actors else [*actors, HEALTH_ONLY]
