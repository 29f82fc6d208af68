"""The runtime: everything a running crmd holds, passed to whoever needs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import pluggy
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.ai.service import Suggesters
from crmd.auth.google import GoogleCerts
from crmd.campaigns.vendors import Vendors
from crmd.config import Config
from crmd.services.connect import MongoClient
from crmd.streams import StreamNames
from crmd.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from crmd.runtime.supervisor import Supervisor


@dataclass(slots=True)
class Runtime:
    config: Config
    mongo: MongoClient
    redis: Redis
    plugins: pluggy.PluginManager
    http: aiohttp.ClientSession
    """For calls crmd makes: Google, vendors, AI. Every call sets its own timeout."""
    jwt_secret: str
    metrics: Metrics = field(default_factory=Metrics)
    supervisor: Supervisor | None = None
    vendors: Vendors = field(default_factory=Vendors)
    suggesters: Suggesters = field(default_factory=Suggesters)
    """Loaded from the plugins at start-up (``load_vendors``)."""
    google_certs: GoogleCerts = field(init=False)

    def __post_init__(self) -> None:
        self.google_certs = GoogleCerts(self.http, self.config.auth.google_certs_url)

    @property
    def db(self) -> AsyncDatabase[dict[str, Any]]:
        return self.mongo[self.config.mongodb.database]

    @property
    def streams(self) -> StreamNames:
        return StreamNames.for_prefix(self.config.redis.stream_prefix)

    def load_vendors(self) -> Vendors:
        found = [v for batch in self.plugins.hook.crmd_vendors(runtime=self) for v in batch]
        self.vendors = Vendors(found)
        return self.vendors

    def load_suggesters(self) -> Suggesters:
        found = [s for batch in self.plugins.hook.crmd_suggesters(runtime=self) for s in batch]
        ai = self.config.ai
        self.suggesters = Suggesters(found, ai.order, ai.timeout)
        return self.suggesters

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """A plugin's own table, ``[plugins.<name>]``; empty when there is none."""
        return dict(self.config.plugins.get(name, {}))
