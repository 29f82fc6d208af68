"""The pytest plugin crmd installs (entry point ``pytest11``): fixtures for a plugin's
tests, all named ``crmd_*`` (and ``sign_receipt``) so that they never clash with yours.

- ``crmd_services`` (session): Redis and SecantusDB started on free ports, or the
  servers named by ``CRMD_TEST_REDIS_URL`` and ``CRMD_TEST_MONGODB_URL``.
- ``crmd_plugins``: the ``[plugins.<name>]`` tables the crmd under test gets; ``{}``
  unless you override the fixture (it may use your own fixtures, such as a local server).
- ``crmd_actors``: the actors it runs; all of crmd's unless overridden.
- ``crmd_server``: that crmd, running and healthy (a ``RunningCrmd``: ``.url``,
  ``.crmd``, ``.vendor(name)``, ``.plugin_secret(name)``), its data dropped afterwards.
- ``crmd_client``: an ``aiohttp.ClientSession`` on it, signed in (paths are relative).
- ``sign_receipt``: ``crmd.testing.sign_receipt``, for posting signed callbacks.

Async fixtures need pytest-asyncio (``pip install 'crmd[testing]'``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from typing import Any

import aiohttp
import pytest

from crmd.actors import ACTORS
from crmd.services.embedded import Urls
from crmd.testing.running import RunningCrmd, running_crmd, signed_in
from crmd.testing.servers import real_services
from crmd.testing.signing import sign_receipt as _sign_receipt

try:
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - without it, async fixtures cannot run at all
    async_fixture = pytest.fixture  # type: ignore[assignment]


@pytest.fixture(scope="session")
def crmd_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Urls]:
    with real_services(tmp_path_factory.mktemp("crmd-services"), os.environ) as urls:
        yield urls


@pytest.fixture
def crmd_plugins() -> dict[str, dict[str, Any]]:
    return {}


@pytest.fixture
def crmd_actors() -> Collection[str]:
    return ACTORS


@async_fixture
async def crmd_server(
    crmd_services: Urls, crmd_plugins: dict[str, dict[str, Any]], crmd_actors: Collection[str]
) -> AsyncIterator[RunningCrmd]:
    async with running_crmd(crmd_services, crmd_plugins, crmd_actors) as running:
        yield running


@async_fixture
async def crmd_client(crmd_server: RunningCrmd) -> AsyncIterator[aiohttp.ClientSession]:
    async with await signed_in(crmd_server.url) as client:
        yield client


@pytest.fixture
def sign_receipt() -> Callable[..., dict[str, str]]:
    return _sign_receipt
