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
from crmd.campaigns import effect, winner
from crmd.campaigns.actor import dispatch_actor
from crmd.campaigns.cap import FrequencyCap
from crmd.campaigns.vendors import RateLimits
from crmd.events.actor import events_actor
from crmd.events.model import AfterStore, Event
from crmd.events.orders import OrderEvents
from crmd.events.retention import delete_expired
from crmd.flows import schedule as flow_schedule
from crmd.flows import timers as flow_timers
from crmd.flows.actor import flows_actor, queue_states
from crmd.flows.engine import Engine, FlowSettings
from crmd.flows.intake import Happened, on_events
from crmd.http.actor import HttpActor
from crmd.http.health import health_app
from crmd.ingest.actor import ingest_actor
from crmd.ingest.publish import recover_interrupted
from crmd.receipts.actor import receipts_actor, recount_key
from crmd.receipts.apply import rematch_unknown
from crmd.receipts.outcomes import emit_outcomes
from crmd.receipts.soft import SoftBounceRule
from crmd.receipts.tracking_actor import tracking_actor
from crmd.runtime.actor import Actor
from crmd.runtime.clock import ClockActor, Task
from crmd.runtime.lease import Lease, fence
from crmd.segments import service as segments
from crmd.segments.slices import CustomerVersions
from crmd.store.numbering import recount_stale
from crmd.store.tenant import TenantStore
from crmd.suppressions.links import UnsubscribeLinks
from crmd.verp import ReturnPaths
from crmd.webhooks import subscribers
from crmd.webhooks.deliver import deliver_due
from crmd.webhooks.emit import emit as emit_webhook
from crmd.workspaces import audit

if TYPE_CHECKING:
    from crmd.system import Crmd

ACTORS = (
    "ingest",
    "dispatch",
    "receipts",
    "tracking",
    "events",
    "flows",
    "clock",
    "bounces",
    "http",
)
"""Every actor crmd runs, in the order they start (http last, so it stops first). The
bounces listener is built only when ``[bounces] host`` is set."""
HEALTH_ONLY = "health"
"""The actor that serves only /healthz, /readyz and /metrics, run in place of http by a
process without the API (a worker), so that it can still be watched."""


def build_actors(
    crmd: Crmd, plugin_actors: list[Actor], after_store: AfterStore | None = None
) -> dict[str, Actor]:
    """``after_store`` is told of every event stored for the first time (posted, or
    raised by a new order), at least once (``crmd.events.model.AfterStore``); by
    default the flows (``crmd.flows.intake``)."""
    config, db, redis, streams = crmd.config, crmd.db, crmd.redis, crmd.streams
    settings, metrics = config.streams, crmd.metrics
    versions = CustomerVersions(redis, config.redis.stream_prefix)

    async def start_due(now: Any) -> object:
        return await campaign_clock.start_due_campaigns(db, redis, streams.dispatch, now)

    async def stranded(now: Any) -> object:
        bound = config.campaigns.stranded_after_seconds
        return await campaign_clock.recover_stranded(db, redis, streams.dispatch, bound, now)

    links = UnsubscribeLinks.from_secret(
        crmd.jwt_secret, config.server.base_url, config.campaigns.tracking_days
    )
    flows = config.flows
    engine = Engine(
        redis,
        streams.dispatch,
        crmd.vendors,
        links,
        FlowSettings(flows.time_scale, flows.quiet_hours, flows.timezone),
        steps_run=metrics.flow_steps,
    )
    queue_flow_states = queue_states(redis, streams.flows)
    crmd.flow_engine, crmd.flow_queue = engine, queue_flow_states

    async def flow_webhook(store: TenantStore, kind: str, data: dict[str, Any]) -> None:
        # One delivery per state and kind, however often a run is redone.
        key = f"{kind}:{data['stateId']}"
        await emit_webhook(
            store, redis, kind, data, event_id=key, prefix=config.redis.stream_prefix
        )

    engine.emit = flow_webhook

    async def to_flows(store: TenantStore, events: list[Event]) -> None:
        happened = [
            Happened(e.customerId, e.name, e.properties, e.eventId, e.timestamp) for e in events
        ]
        await on_events(store, engine, queue_flow_states, happened)

    if after_store is None:
        after_store = to_flows
    lag = flow_timers.Lag(metrics.flow_timer_lag)

    async def fire_timers(now: Any) -> object:
        return await flow_timers.fire_due(db, queue_flow_states, now, flows.timer_batch, lag)

    async def flow_schedules(now: Any) -> object:
        minutes = getattr(flows, "segment_check_minutes", 15)
        return await flow_schedule.check_scheduled(
            db, engine, queue_flow_states, now, flows.timer_batch, minutes
        )

    async def stranded_flow_states(now: Any) -> object:
        return await flow_timers.requeue_stranded(
            db, redis, streams.flows, queue_flow_states, now, flows.timer_batch
        )

    soft = SoftBounceRule(config.bounces.soft_limit, config.bounces.soft_window_days)
    return_paths = bounce_addresses(crmd)

    async def rematch(now: Any) -> object:
        return await rematch_unknown(db, metrics, now, soft)

    async def close_windows(now: Any) -> object:
        window = config.campaigns.receipt_window_seconds
        return await campaign_clock.close_receipt_windows(db, window, now)

    async def decide_tests(now: Any) -> object:
        return await winner.decide_due(db, redis, streams.dispatch, now)

    async def campaign_results(now: Any) -> object:
        return await effect.refresh_dirty(db, now)

    async def interrupted_uploads(now: Any) -> object:
        return await recover_interrupted(db, redis, streams.ingest, now)

    async def segment_counts(now: Any) -> object:
        return await segments.refresh_stale_counts(crmd.counter, db, now)

    async def tallies(now: Any) -> object:
        return await recount_stale(db, now)

    async def expired_events(now: Any) -> object:
        kept = config.events
        return await delete_expired(db, now, kept.retention_days, kept.retention_batch)

    async def expired_audit(now: Any) -> object:
        return await audit.delete_expired(db, now, config.audit.retention_days)

    prefix = config.redis.stream_prefix

    async def webhooks(now: Any) -> object:
        await subscribers.ensure_built(db, redis, prefix)
        assert crmd.http is not None
        return await deliver_due(db, crmd.http, config.webhooks, now)

    clock_name = f"{config.redis.stream_prefix}:clock"
    tasks: list[tuple[str, Task]] = [
        ("start_due_campaigns", start_due),
        ("stranded_campaigns", stranded),
        ("rematch_receipts", rematch),
        ("close_receipt_windows", close_windows),
        ("decide_ab_tests", decide_tests),
        ("flow_timers", fire_timers),
        ("stranded_flow_states", stranded_flow_states),
        ("flow_schedules", flow_schedules),
        ("campaign_results", campaign_results),
        ("interrupted_uploads", interrupted_uploads),
        ("segment_counts", segment_counts),
        ("tallies", tallies),
        ("expired_events", expired_events),
        ("expired_audit", expired_audit),
        ("webhook_deliveries", webhooks),
    ]
    server = config.server
    actors: list[Actor] = [
        ingest_actor(
            db,
            redis,
            streams.ingest,
            settings,
            metrics,
            versions,
            OrderEvents(after_store, config.events.retention_days, versions.changed),
            config.redis.stream_prefix,
        ),
        dispatch_actor(
            db,
            redis,
            streams.dispatch,
            crmd.vendors,
            settings,
            metrics,
            RateLimits(redis, config.redis.stream_prefix),
            links,
            recount_key(streams.receipts),
            return_paths,
            FrequencyCap(
                redis, config.redis.stream_prefix, flows.max_messages_per_customer_per_day
            ),
        ),
        receipts_actor(
            db,
            redis,
            streams.receipts,
            settings,
            metrics,
            soft,
            functools.partial(emit_outcomes, db, redis, prefix),
        ),
        events_actor(db, redis, streams.events, settings, metrics, versions.changed, after_store),
        tracking_actor(
            db,
            redis,
            streams.tracking,
            recount_key(streams.receipts),
            config.campaigns.machine_open_seconds,
            settings,
            metrics,
        ),
        flows_actor(db, redis, streams.flows, engine, settings, metrics, lag.detail),
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
