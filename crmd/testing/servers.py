"""Real servers for tests: one Redis and one SecantusDB (MongoDB's wire protocol),
started through the same code as crmd's embedded default, and a crmd built on them with
a database and stream prefix of its own. crmd's own suite uses these as a plugin
author's tests do."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

from crmd.app import Crmd, open_crmd
from crmd.config import Config, load_config
from crmd.services.children import ServerProcess
from crmd.services.connect import connect_mongo, connect_redis
from crmd.services.embedded import Urls
from crmd.services.servers import redis_process, secantus_process, start_and_wait

MONGODB_VARIABLE = "CRMD_TEST_MONGODB_URL"
REDIS_VARIABLE = "CRMD_TEST_REDIS_URL"


@contextlib.contextmanager
def real_services(log_dir: Path, environ: Mapping[str, str]) -> Iterator[Urls]:
    """Redis and SecantusDB on free ports, logging under ``log_dir``, stopped on exit;
    a server named by ``CRMD_TEST_REDIS_URL`` / ``CRMD_TEST_MONGODB_URL`` is used
    instead of starting one."""
    mongo_url = environ.get(MONGODB_VARIABLE)
    redis_url = environ.get(REDIS_VARIABLE)
    started: list[ServerProcess] = []
    try:
        if not redis_url:
            server = redis_process(None, log_dir)
            asyncio.run(start_and_wait(server, 30))
            started.append(server)
            redis_url = server.url
        if not mongo_url:
            server = secantus_process(None, log_dir)
            asyncio.run(start_and_wait(server, 60))
            started.append(server)
            mongo_url = server.url
        yield Urls(mongodb=mongo_url, redis=redis_url)
    finally:
        for server in started:
            server.stop()


def make_test_config(services: Urls, **sections: Mapping[str, Any]) -> Config:
    """A config on ``services`` with a database and stream prefix of its own, dev sign-in
    on, and stream timings short enough to watch a reclaim happen; ``sections`` set
    more keys, e.g. ``plugins={"smtp": {...}}`` or ``server={"port": 8123}``."""
    token = uuid.uuid4().hex[:12]
    overrides: dict[tuple[str, ...], Any] = {
        ("mongodb", "url"): services.mongodb,
        ("mongodb", "database"): f"t_{token}",
        ("redis", "url"): services.redis,
        ("redis", "stream_prefix"): f"t{token}",
        ("server", "port"): 8080,
        ("streams", "block_ms"): 200,
        ("streams", "claim_idle_ms"): 10_000,
        ("streams", "claim_interval_ms"): 100,
        ("auth", "google_login"): False,
        ("auth", "dev_login"): True,
        ("auth", "jwt_secret"): f"test-secret-{token}-{uuid.uuid4().hex}",
        ("supervisor", "restart_initial_delay"): 0.1,
        ("supervisor", "restart_max_delay"): 1.0,
    }
    for section, values in sections.items():
        for key, value in values.items():
            overrides[(section, key)] = value
    return load_config(None, environ={}, overrides=overrides, search=False).config


@contextlib.asynccontextmanager
async def crmd_with(services: Urls, **sections: Mapping[str, Any]) -> AsyncIterator[Crmd]:
    """A crmd of a test's own, on a config of its own (``make_test_config``'s sections),
    no actor running; its database and stream keys removed afterwards."""
    config = make_test_config(services, **sections)
    try:
        async with open_crmd(config) as crmd:
            yield crmd
    finally:
        await forget(config)


async def forget(config: Config) -> None:
    """Drop what a test's crmd left: its database and its Redis keys."""
    client = await connect_mongo(config.mongodb.url, timeout=10)
    await client.drop_database(config.mongodb.database)
    await client.close()
    redis = await connect_redis(config.redis.url, config.redis.socket_timeout, timeout=10)
    prefix = config.redis.stream_prefix
    keys = [k for match in (f"{prefix}*", f"{{{prefix}*") async for k in redis.scan_iter(match)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
