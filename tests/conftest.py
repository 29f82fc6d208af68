"""Real services for the whole suite: one Redis and one SecantusDB per test session,
started through the same code as the embedded default; each test gets its own database
name and stream prefix. Set CRMD_TEST_MONGODB_URL / CRMD_TEST_REDIS_URL to run the suite
against servers of your own instead."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from crmd.campaigns.actor import dispatch_actor
from crmd.config import Config, load_config
from crmd.http.app import make_app
from crmd.ingest.actor import ingest_actor
from crmd.plugins.manager import make_plugin_manager
from crmd.receipts.actor import receipts_actor
from crmd.runtime.context import Runtime
from crmd.runtime.supervisor import Supervisor
from crmd.services.connect import MongoClient, connect_mongo, connect_redis
from crmd.services.embedded import Urls
from crmd.services.servers import (
    ServerProcess,
    redis_process,
    secantus_process,
    start_and_wait,
)
from crmd.store.indexes import ensure_indexes

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Urls]:
    mongo_url = os.environ.get("CRMD_TEST_MONGODB_URL")
    redis_url = os.environ.get("CRMD_TEST_REDIS_URL")
    log_dir = tmp_path_factory.mktemp("services")
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


def make_test_config(services: Urls, **sections: dict[str, Any]) -> Config:
    """The suite's config: the session's servers, a database and stream prefix of the
    test's own, and stream timings short enough to watch reclaims happen."""
    token = uuid.uuid4().hex[:12]
    overrides: dict[tuple[str, ...], Any] = {
        ("mongodb", "url"): services.mongodb,
        ("mongodb", "database"): f"t_{token}",
        ("redis", "url"): services.redis,
        ("redis", "stream_prefix"): f"t{token}",
        ("server", "port"): 8080,
        ("streams", "block_ms"): 200,
        ("streams", "claim_idle_ms"): 300,
        ("streams", "claim_interval_ms"): 100,
        ("auth", "google_login"): False,
        ("auth", "dev_login"): True,
        ("auth", "jwt_secret"): f"test-secret-{token}-{uuid.uuid4().hex}",
    }
    for section, values in sections.items():
        for key, value in values.items():
            overrides[(section, key)] = value
    return load_config(None, environ={}, overrides=overrides, search=False).config


@pytest.fixture
def config(services: Urls) -> Config:
    return make_test_config(services)


@pytest.fixture
async def mongo(config: Config) -> AsyncIterator[MongoClient]:
    client = await connect_mongo(config.mongodb.url, timeout=10)
    yield client
    await client.drop_database(config.mongodb.database)
    await client.close()


@pytest.fixture
async def redis(config: Config) -> AsyncIterator[Any]:
    client = await connect_redis(config.redis.url, config.redis.socket_timeout, timeout=10)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{config.redis.stream_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def runtime(config: Config, mongo: MongoClient, redis: Any) -> AsyncIterator[Runtime]:
    plugins = make_plugin_manager(config.plugins, entry_points=False)
    async with aiohttp.ClientSession() as http:
        await ensure_indexes(mongo[config.mongodb.database])
        yield Runtime(
            config=config,
            mongo=mongo,
            redis=redis,
            plugins=plugins,
            http=http,
            jwt_secret=config.auth.jwt_secret,
        )


@pytest.fixture
async def client(aiohttp_client: Any, runtime: Runtime) -> TestClient[Any, Any]:
    result: TestClient[Any, Any] = await aiohttp_client(make_app(runtime))
    return result


def restarts(config: Config) -> dict[str, float]:
    return {
        "initial_delay": config.supervisor.restart_initial_delay,
        "max_delay": config.supervisor.restart_max_delay,
    }


@pytest.fixture
async def ingesting(runtime: Runtime) -> AsyncIterator[Supervisor]:
    supervisor = Supervisor([ingest_actor(runtime)], runtime.metrics, **restarts(runtime.config))
    supervisor.start()
    assert await supervisor.wait_healthy(10)
    yield supervisor
    await supervisor.stop(10)


@pytest.fixture
async def auth(client: Any) -> dict[str, str]:
    response = await client.post("/api/v1/user/dev-login", json={"email": "ops@example.com"})
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    """The dummy vendor's [plugins.dummy_vendor] table; a test module may override it."""
    return {"delay_min": 0.05, "delay_max": 0.3, "seed": 7, "failure_rate": 0.1}


@pytest.fixture
async def delivering(
    client: Any, runtime: Runtime, ingesting: Any, vendor_settings: dict[str, Any]
) -> AsyncIterator[Runtime]:
    runtime.config.plugins["dummy_vendor"] = {
        "callback_url": str(client.make_url("/api/v1/deliveryReceipt/dummy_vendor")),
        **vendor_settings,
    }
    runtime.plugins = make_plugin_manager(runtime.config.plugins)
    runtime.load_vendors()
    runtime.load_suggesters()
    supervisor = Supervisor(
        [dispatch_actor(runtime), receipts_actor(runtime)],
        runtime.metrics,
        **restarts(runtime.config),
    )
    supervisor.start()
    assert await supervisor.wait_healthy(10)
    yield runtime
    await supervisor.stop(10)
    await runtime.vendors.close()
