"""What a running crmd is made of: ``Crmd`` holds its built and connected parts, and runs
its actors under supervisors. ``crmd.app`` builds it; the daemon and the tests reach the
parts through it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pluggy
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.actors import ACTORS, HEALTH_ONLY
from crmd.ai.service import Suggesters
from crmd.campaigns.vendors import Vendors
from crmd.config import Config
from crmd.http.health import Health
from crmd.receipts.sources import ReceiptSources
from crmd.runtime.actor import Actor
from crmd.runtime.supervisor import Supervisor
from crmd.segments.counting import AudienceCounter
from crmd.services.connect import MongoClient
from crmd.streams import StreamNames
from crmd.telemetry.metrics import Metrics


@dataclass
class Crmd:
    """A crmd, built and connected. Handlers and actors never see this object: each
    was handed what it uses. The daemon and the tests reach the parts through it."""

    config: Config
    mongo: MongoClient
    redis: Redis
    db: AsyncDatabase[dict[str, Any]]
    web_db: AsyncDatabase[dict[str, Any]]
    """The same database through the requests' own few connections
    (``[server] database_connections``)."""
    streams: StreamNames
    metrics: Metrics
    plugins: pluggy.PluginManager
    vendors: Vendors
    suggesters: Suggesters
    sources: ReceiptSources
    jwt_secret: str
    app: web.Application
    health: Health
    counter: AudienceCounter
    actors: dict[str, Actor] = field(default_factory=dict)
    flow_engine: Any = None
    """The flows' engine (``crmd.flows.engine.Engine``), built with the actors."""
    flow_queue: Any = None
    """Queues flow states on the flows stream (``crmd.flows.actor.queue_states``)."""
    http: aiohttp.ClientSession | None = None
    """The client session for calls out (webhook deliveries)."""
    supervisors: list[Supervisor] = field(default_factory=list)

    def start(self, names: Collection[str] = ACTORS) -> Supervisor:
        """Run the named actors (with all of them, the plugins' own too) under a
        supervisor; an actor already running is not started twice."""
        running = {a.name for s in self.supervisors for a in s.actors}
        supervision = self.config.supervisor
        supervisor = Supervisor(
            [self.actors[name] for name in self.run_order(names) if name not in running],
            self.metrics,
            initial_delay=supervision.restart_initial_delay,
            max_delay=supervision.restart_max_delay,
        )
        self.supervisors.append(supervisor)
        self.health.supervisors.append(supervisor)
        supervisor.start()
        return supervisor

    def run_order(self, names: Collection[str]) -> list[str]:
        """The named actors in the order they start: crmd's own, the plugins' (when all
        of crmd's are asked for), and http last, so that it stops first."""
        unknown = set(names) - set(self.actors) - set(ACTORS)  # a role that is off: not built
        if unknown:
            raise ValueError(f"no actor(s) {', '.join(sorted(unknown))}; actors: {ACTORS}")
        order = [n for n in ACTORS if n in names and n in self.actors and n != "http"]
        if set(names) >= {name for name in ACTORS if name in self.actors}:
            order += [name for name in self.actors if name not in (*ACTORS, HEALTH_ONLY)]
        order += [name for name in ("http", HEALTH_ONLY) if name in names]
        return order

    async def stop(self) -> bool:
        """Stop every running actor, the last started first; True when all stopped in
        time."""
        clean = True
        while self.supervisors:
            supervisor = self.supervisors.pop()
            clean &= await supervisor.stop(self.config.server.shutdown_timeout)
        return clean
