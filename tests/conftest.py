"""Real services for the whole suite: one Redis and one SecantusDB per test session,
started by crmd's own test kit (``crmd.testing``, the pytest plugin crmd installs) through
the same code as the embedded default; each test gets its own database name and stream
prefix. Set CRMD_TEST_MONGODB_URL / CRMD_TEST_REDIS_URL to run the suite against servers
of your own instead."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from crmd.app import Crmd, open_crmd
from crmd.config import Config
from crmd.runtime.supervisor import Supervisor
from crmd.services.children import free_port
from crmd.services.connect import MongoClient, connect_mongo, connect_redis
from crmd.services.embedded import Urls
from crmd.testing import crmd_with, make_test_config

SLOW_FIXTURES = frozenset({"browser"})
"""A test that drives Chromium is slow wherever it lives (the other slow ones, cluster,
kill and bench tests, say so in their module's ``pytestmark``)."""


FAST_TIER = os.environ.get("CRMD_TEST_TIER") == "check"
"""``make check`` (the fast tier) runs each property test on a tenth of its examples."""


def examples(full: int) -> int:
    """How many examples a property test tries: ``full`` in ``make test``, a tenth (at
    least 25) in ``make check``."""
    return max(25, full // 10) if FAST_TIER else full


HEAVIEST = (
    "tests/cluster/",
    "tests/test_bench.py",
    "tests/ingest/test_import_restart.py",
    "tests/ingest/test_ingest_crash.py",
    "tests/api/test_fuzz.py",
    "tests/services/test_embedded_recovery.py",
)
"""The files that take a minute or more: started first, so that the two processes of
``make test`` do not end with one of them alone on a long file."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``make check`` runs what is not ``slow``; ``make test`` runs everything, the
    heaviest files first, then the files with slow tests, each file's tests in their
    order (some read what an earlier one left)."""
    slow_files = set()
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("slow"):
            slow_files.add(item.nodeid.split("::")[0])

    def weight(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return 0 if path.startswith(HEAVIEST) else 1 if path in slow_files else 2

    items.sort(key=weight)  # stable: a file's tests keep their order


__all__ = ["crmd_with", "make_test_config"]  # the suite's modules import them from here
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def services(crmd_services: Urls) -> Urls:
    """The session's servers: crmd.testing's, shared with the plugins' own tests."""
    return crmd_services


@pytest.fixture(scope="session")
def example_vendor_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example third-party vendor, pip-installed into a folder of its own, as a
    user would install it (put the folder on the path to load it)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(Path(__file__).resolve().parent.parent / "plugins" / "crmd_example_vendor"),
        ],
        check=True,
        timeout=300,
    )
    return target


@pytest.fixture
def port() -> int:
    """The test server's port, known before crmd is built (it is in public_url)."""
    return free_port()


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    """The dummy vendor's [plugins.dummy_vendor] table; a test module may override it."""
    return {"delay_min": 0.05, "delay_max": 0.3, "seed": 7, "failure_rate": 0.1}


@pytest.fixture
def campaigns_settings() -> dict[str, Any]:
    """The [campaigns] table; a test module may override it (a faster clock)."""
    return {}


@pytest.fixture
def config(
    services: Urls, port: int, vendor_settings: dict[str, Any], campaigns_settings: dict[str, Any]
) -> Config:
    return make_test_config(
        services,
        server={"port": port},
        plugins={"dummy_vendor": vendor_settings},
        campaigns=campaigns_settings,
    )


@pytest.fixture
async def mongo(config: Config) -> AsyncIterator[MongoClient]:
    client = await connect_mongo(config.mongodb.url, timeout=10)
    yield client
    if not FAST_TIER:  # (the fast tier's servers go with its session: no need)
        await client.drop_database(config.mongodb.database)
    await client.close()


@pytest.fixture
async def redis(config: Config) -> AsyncIterator[Any]:
    client = await connect_redis(config.redis.url, config.redis.socket_timeout, timeout=10)
    yield client
    prefix = config.redis.stream_prefix
    keys = [
        key
        for match in (f"{prefix}*", f"{{{prefix}*")
        async for key in client.scan_iter(match=match)
    ]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def system(config: Config, mongo: MongoClient, redis: Any) -> AsyncIterator[Crmd]:
    """crmd built by its composition root on the test's config, no actor running."""
    async with open_crmd(config) as crmd:
        yield crmd


@pytest.fixture
async def client(aiohttp_client: Any, system: Crmd, port: int) -> TestClient[Any, Any]:
    result: TestClient[Any, Any] = await aiohttp_client(system.app, server_kwargs={"port": port})
    return result


@pytest.fixture
async def ingesting(system: Crmd) -> Supervisor:
    supervisor = system.start(("ingest",))
    assert await supervisor.wait_healthy(10)
    return supervisor


@pytest.fixture
async def auth(client: Any) -> dict[str, str]:
    response = await client.post("/api/v1/user/dev-login", json={"email": "ops@example.com"})
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


@pytest.fixture
def delivering_actors() -> tuple[str, ...]:
    """The actors ``delivering`` starts; a test module may add to them (the clock)."""
    return ("dispatch", "receipts")


@pytest.fixture
async def delivering(
    client: Any, system: Crmd, ingesting: Any, delivering_actors: tuple[str, ...]
) -> Crmd:
    """The dispatch and receipts actors running, the dummy vendor calling the test
    server back."""
    supervisor = system.start(delivering_actors)
    assert await supervisor.wait_healthy(10)
    return system
