"""The composition root: the one module that knows every part of crmd and wires them.

``open_crmd`` reads nothing itself: given the configuration it starts the embedded
servers when asked to, connects MongoDB and Redis, prepares indexes and consumer groups,
loads the plugins (each with a context of its own), builds the services, the actors and
the aiohttp application, and closes everything again on the way out. ``crmd serve``,
the tests and the benchmark all build crmd through it; every other module is handed
only what it uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import sys
from collections.abc import AsyncIterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pluggy
import structlog
from aiohttp import web

from crmd.actors import build_actors, roles
from crmd.ai import routes as ai_routes
from crmd.ai.service import Suggesters
from crmd.auth import routes as auth_routes
from crmd.auth.middleware import authenticate
from crmd.auth.secret import SecretError, resolve_jwt_secret
from crmd.auth.signin import SignIn
from crmd.campaigns import jobs, letters, single
from crmd.campaigns import routes as campaign_routes
from crmd.campaigns.planning import place_old_logs
from crmd.campaigns.service import Campaigns
from crmd.campaigns.single import MESSAGES, Messages
from crmd.campaigns.vendors import Vendors
from crmd.config import Config, redact_url
from crmd.console import setup_console
from crmd.console.web import ConsoleSettings
from crmd.console.web import console as console_pages
from crmd.customers import routes as customer_routes
from crmd.customers.service import Customers
from crmd.errors import Unavailable
from crmd.events import model as events_model
from crmd.events import routes as event_routes
from crmd.events.intake import EventIntake
from crmd.flows import routes as flow_routes
from crmd.flows.checks import Limits as FlowLimits
from crmd.flows.service import Flows
from crmd.http import compat, health, openapi
from crmd.http.admission import Admission
from crmd.http.cors import Cors
from crmd.http.health import Health
from crmd.http.keys import (
    ACCESS,
    ADMISSION,
    API_DOCUMENT,
    API_KEYS,
    CAMPAIGNS,
    CUSTOMERS,
    DATABASE,
    DEAD_LETTERS,
    EVENTS,
    FLOWS,
    HEALTH,
    IMPORTS,
    INVITATIONS,
    METRICS,
    RECEIPTS,
    SIGN_IN,
    SUGGESTERS,
    TRACKER,
    UNSUBSCRIBES,
    WEBHOOKS,
)
from crmd.http.middleware import declared_answers, errors, metrics, request_context
from crmd.ingest import chunks
from crmd.ingest import routes as ingest_routes
from crmd.ingest.batches import Batches
from crmd.ingest.parse import Limits
from crmd.ingest.upload import Imports
from crmd.plugins.context import PluginContext, plugin_secret
from crmd.plugins.manager import PluginError, collect, get_plugin_manager
from crmd.receipts import batch, hits
from crmd.receipts import routes as receipt_routes
from crmd.receipts.hits import Tracker
from crmd.receipts.intake import ReceiptIntake
from crmd.receipts.sources import ReceiptSources
from crmd.runtime.daemon import StartupError, ensure_can_listen, run_daemon
from crmd.runtime.supervisor import Supervisor
from crmd.segments import routes as segment_routes
from crmd.segments.counting import COUNTS, AudienceCounter
from crmd.segments.slices import CustomerVersions
from crmd.services.children import EmbeddedError
from crmd.services.connect import connect_mongo, connect_redis
from crmd.services.embedded import embedded_services
from crmd.store.indexes import ensure_indexes
from crmd.store.numbering import number_unnumbered
from crmd.streams import GROUP, StreamNames, rename_old_keys
from crmd.streams import routes as stream_routes
from crmd.streams.dead import DeadLetters, Describers
from crmd.streams.gauges import measure_stream
from crmd.streams.worker import ensure_group
from crmd.suppressions import routes as suppression_routes
from crmd.suppressions.links import UnsubscribeLinks
from crmd.suppressions.unsubscribe import Unsubscribes
from crmd.system import Crmd as Crmd  # (its home; crmd.app built it first)
from crmd.telemetry.metrics import Metrics
from crmd.telemetry.mongo import CommandCounter
from crmd.webhooks import routes as webhook_routes
from crmd.webhooks.service import Webhooks
from crmd.workspaces import audit_routes, key_routes
from crmd.workspaces import routes as workspace_routes
from crmd.workspaces.access import Access
from crmd.workspaces.guard import guard
from crmd.workspaces.invitation_links import InvitationLinks
from crmd.workspaces.invitations import Invitations
from crmd.workspaces.keys import Keys
from crmd.workspaces.migrate import give_users_workspaces
from crmd.workspaces.rates import KeyRates

log = structlog.get_logger(__name__)

MAX_BODY = 1024**2
"""Bodies larger than this are refused with 413, except where a route streams its own."""
SWITCH_INTERVAL = 0.001


@contextlib.asynccontextmanager
async def open_crmd(
    config: Config,
    *,
    plugin_manager: pluggy.PluginManager | None = None,
    lost: asyncio.Event | None = None,
) -> AsyncIterator[Crmd]:
    """crmd, connected and built, with no actor running yet (``Crmd.start``). With
    ``embedded`` URLs its own servers are started (``lost`` is set if one dies for
    good). ``plugin_manager`` replaces the installed plugins (tests)."""
    try:
        secret = resolve_jwt_secret(config)
    except SecretError as exc:
        raise StartupError(str(exc)) from None
    metrics_registry = Metrics()
    async with contextlib.AsyncExitStack() as stack:
        try:
            urls = await stack.enter_async_context(
                embedded_services(
                    config.mongodb.url,
                    config.redis.url,
                    Path(config.embedded.data_dir),
                    config.embedded.start_timeout,
                    lost,
                )
            )
            log.info(
                "crmd.connecting", mongodb=redact_url(urls.mongodb), redis=redact_url(urls.redis)
            )
            mongo = await connect_mongo(
                urls.mongodb, config.mongodb.connect_timeout, [CommandCounter(metrics_registry)]
            )
            stack.push_async_callback(mongo.close)
            # Requests and audience counts have a pool of their own, of a few
            # connections: whatever they ask, the database works on at most that many of
            # their commands at once, and imports and sends keep the rest of its time.
            web_mongo = await connect_mongo(
                urls.mongodb,
                config.mongodb.connect_timeout,
                [CommandCounter(metrics_registry)],
                connections=config.server.database_connections,
            )
            stack.push_async_callback(web_mongo.close)
            redis = await connect_redis(
                urls.redis, config.redis.socket_timeout, config.redis.connect_timeout
            )
        except (EmbeddedError, Unavailable) as exc:
            raise StartupError(str(exc)) from None
        stack.push_async_callback(redis.aclose)
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        stack.push_async_callback(http.close)
        db = mongo[config.mongodb.database]
        web_db = web_mongo[config.mongodb.database]
        streams = StreamNames.for_prefix(config.redis.stream_prefix)
        await rename_old_keys(redis, config.redis.stream_prefix)
        await ensure_indexes(db)
        await number_unnumbered(db)
        await place_old_logs(db)
        await give_users_workspaces(db)
        for stream in streams.all():
            await ensure_group(redis, stream, GROUP)
        try:
            plugins = plugin_manager or get_plugin_manager(config.plugins)
            contexts = plugin_contexts(config, secret, http)
            vendors = Vendors(
                collect(plugins, "crmd_vendors", contexts), config.campaigns.default_vendor
            )
            stack.push_async_callback(vendors.close)
            sources = ReceiptSources(vendors, collect(plugins, "crmd_receipt_sources", contexts))
            stack.push_async_callback(sources.close)
            offered = collect(plugins, "crmd_suggesters", contexts)
            plugin_actors = collect(plugins, "crmd_actors", contexts)
        except PluginError as exc:
            raise StartupError(str(exc)) from None
        crmd = Crmd(
            config=config,
            mongo=mongo,
            redis=redis,
            db=db,
            web_db=web_db,
            streams=streams,
            metrics=metrics_registry,
            plugins=plugins,
            vendors=vendors,
            suggesters=Suggesters(offered, config.ai.order, config.ai.timeout),
            sources=sources,
            jwt_secret=secret,
            app=web.Application(),
            health=Health(mongo, redis, streams.all(), metrics_registry, measure_stream),
            # The actors' connections, not the requests' one: a page never queues
            # behind a run of slices being read.
            counter=AudienceCounter(
                db,
                redis,
                config.redis.stream_prefix,
                metrics_registry,
                slots=config.server.count_slots,
                wait=config.server.count_wait,
            ),
        )
        stack.push_async_callback(crmd.counter.close)
        crmd.http = http
        crmd.app = make_app(crmd, http)
        crmd.actors = build_actors(crmd, plugin_actors)
        # What start-up built lives as long as crmd: out of the collector's sight, so a
        # full collection does not walk it again and again. During a large upload a full
        # collection over it held the GIL for 70-110 ms, long enough to stall /healthz.
        gc.freeze()
        try:
            yield crmd
        finally:
            gc.unfreeze()
            await crmd.stop()


def plugin_contexts(config: Config, secret: str, http: aiohttp.ClientSession) -> Any:
    """Each plugin's own context, made when its hooks are first called."""

    def context_for(name: str) -> PluginContext:
        table: Mapping[str, Any] = config.plugins.get(name, {})
        return PluginContext(name, table, http, config.server.base_url, plugin_secret(secret, name))

    return context_for


def dead_letter_describers() -> Describers:
    """Each stream's entries in words, by the domain that writes them: for the API's
    and the ``crmd dead-letters`` command's dead letters (the stream machinery knows no
    domain)."""
    return {domain.FIELD: domain.describe for domain in (chunks, jobs, batch, hits, events_model)}


def make_app(crmd: Crmd, http: aiohttp.ClientSession) -> web.Application:
    """The API: middleware, routes, and on its keys the services requests use."""
    # Uploads are parsed in worker threads beside the event loop. With CPython's default
    # 5 ms GIL switch interval a request waits up to 5 ms at every hand-over, and a
    # request needs many: /healthz took 200-300 ms during a 200k-row upload. At 1 ms it
    # stays under 10 ms, with the same parse speed (measured).
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
    config = crmd.config
    cross_origin = Cors(config.server.cors_origins)
    app = web.Application(
        middlewares=[
            request_context,
            cross_origin.middleware(),
            metrics,
            errors,
            compat.original_shapes,
            authenticate,
            compat.whole_lists,
            console_pages,
            guard,
            declared_answers,
        ],
        client_max_size=MAX_BODY,
    )
    app.on_response_prepare.append(cross_origin.on_response_prepare)
    ingest = config.ingest
    limits = Limits.of(ingest)
    app[DATABASE] = crmd.web_db
    app[METRICS] = crmd.metrics
    app[HEALTH] = crmd.health
    app[SIGN_IN] = SignIn(crmd.web_db, crmd.jwt_secret, config.auth, http)
    app[INVITATIONS] = Invitations(
        crmd.web_db,
        InvitationLinks.from_secret(crmd.jwt_secret, config.server.base_url),
        config.workspaces.invitation_days,
        partial(letters.hand_over, crmd.vendors) if config.workspaces.email_invitations else None,
    )
    rates = KeyRates(crmd.redis, config.redis.stream_prefix, config.keys.requests_per_minute)
    app[ACCESS] = Access(crmd.web_db, rates)
    app[API_KEYS] = Keys(config.keys.max_per_workspace)
    prefix = config.redis.stream_prefix
    app[IMPORTS] = Imports(
        crmd.redis, crmd.streams.ingest, limits, ingest.spool_dir, ingest.uploads_at_once, prefix
    )
    batches = Batches(crmd.redis, crmd.streams.ingest, ingest.chunk_rows, ingest.max_batch)
    versions = CustomerVersions(crmd.redis, config.redis.stream_prefix)
    links = UnsubscribeLinks.from_secret(
        crmd.jwt_secret, config.server.base_url, config.campaigns.tracking_days
    )
    app[CUSTOMERS] = Customers(batches, versions, links.erased)
    campaigns = config.campaigns
    defaults = (campaigns.track_clicks, campaigns.track_opens)
    experiment = (campaigns.holdout_percent, campaigns.attribution_days)
    app[CAMPAIGNS] = Campaigns(
        crmd.redis, crmd.streams.dispatch, crmd.vendors, crmd.counter, links, defaults, experiment
    )
    app[MESSAGES] = Messages(crmd.redis, crmd.streams.dispatch, crmd.vendors, links)
    app[FLOWS] = Flows(crmd.vendors, FlowLimits(max_wait_days=config.flows.max_wait_days))
    app[COUNTS] = crmd.counter
    server = config.server
    app[ADMISSION] = Admission(
        server.read_slots, server.read_slots_per_user, server.read_wait, crmd.metrics
    )
    app[EVENTS] = EventIntake(crmd.redis, crmd.streams.events, config.events, versions)
    app[UNSUBSCRIBES] = Unsubscribes(crmd.web_db, links, crmd.redis, prefix)
    app[WEBHOOKS] = Webhooks(crmd.web_db, crmd.redis, prefix, http, config.webhooks)
    app[RECEIPTS] = ReceiptIntake(crmd.sources, crmd.redis, crmd.streams, crmd.metrics)
    tracking = crmd.streams.tracking
    app[TRACKER] = Tracker(links.tracking, crmd.web_db, crmd.redis, tracking, crmd.metrics)
    app[SUGGESTERS] = crmd.suggesters
    app[DEAD_LETTERS] = DeadLetters(crmd.redis, crmd.streams, dead_letter_describers())
    for table in (
        health.routes,
        auth_routes.routes,
        ingest_routes.routes,
        event_routes.routes,
        customer_routes.routes,
        segment_routes.routes,
        campaign_routes.routes,
        single.routes,
        flow_routes.routes,
        receipt_routes.routes,
        stream_routes.routes,
        ai_routes.routes,
        suppression_routes.routes,
        webhook_routes.routes,
        workspace_routes.routes,
        key_routes.routes,
        audit_routes.routes,
        openapi.routes,
    ):
        app.add_routes(table)
    app[API_DOCUMENT] = {"aliases": compat.add_aliases(app)}  # the original clients' paths
    setup_console(
        app,
        ConsoleSettings(
            csrf_key=hmac.new(crmd.jwt_secret.encode(), b"console-csrf", "sha256").digest(),
            secure_cookies=config.server.base_url.startswith("https://"),
            session_seconds=config.auth.jwt_ttl_seconds,
            public_url=config.server.base_url,
            currency=config.console.currency,
        ),
    )
    return app


async def serve(config: Config, environ: Mapping[str, str]) -> int:
    """``crmd serve``: run until SIGTERM or SIGINT; the process's exit code."""

    async def start(stack: contextlib.AsyncExitStack, lost: asyncio.Event) -> Supervisor:
        ensure_can_listen(config.server.host, config.server.port)
        bounces = config.bounces
        if bounces.host and "bounces" in config.supervisor.actors:
            ensure_can_listen(bounces.host, bounces.port)
        crmd = await stack.enter_async_context(open_crmd(config, lost=lost))
        return crmd.start(roles(config.supervisor.actors))

    log_url = f"http://{config.server.host}:{config.server.port}"
    return await run_daemon(start, environ, log_url, config.server.shutdown_timeout)
