"""The database for a command run beside (or without) the daemon: ``crmd token``,
``crmd keys``. Only MongoDB is attached: a Redis URL other than "embedded" starts
nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from crmd.config import Config
from crmd.services.connect import connect_mongo
from crmd.services.embedded import attach_services
from crmd.store.indexes import ensure_indexes


@asynccontextmanager
async def command_database(config: Config) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """crmd's database, its indexes ensured, closed on leaving."""
    async with attach_services(
        config.mongodb.url, "", Path(config.embedded.data_dir), config.embedded.start_timeout
    ) as urls:
        mongo = await connect_mongo(urls.mongodb, config.mongodb.connect_timeout)
        try:
            db = mongo[config.mongodb.database]
            await ensure_indexes(db)
            yield db
        finally:
            await mongo.close()
