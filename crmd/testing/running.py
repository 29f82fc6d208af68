"""A crmd running as it does in production (its actors, its HTTP server on a real port)
and a client signed in to it, with the few calls every plugin's test makes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from crmd.actors import ACTORS
from crmd.app import Crmd, open_crmd
from crmd.plugins.context import plugin_secret
from crmd.plugins.vendor import Vendor
from crmd.services.children import free_port
from crmd.services.embedded import Urls
from crmd.testing.servers import forget, make_test_config

TEST_EMAIL = "ops@example.com"


@dataclass
class RunningCrmd:
    crmd: Crmd
    url: str
    """Where it answers, e.g. ``http://127.0.0.1:41234``: also its public_url, so the
    receipt URLs it gives its plugins point here."""

    def vendor(self, name: str) -> Vendor:
        return self.crmd.vendors.get(name)

    def plugin_secret(self, name: str) -> str:
        """The signing secret crmd gives the plugin ``name`` (``context.secret``)."""
        return plugin_secret(self.crmd.jwt_secret, name)


@contextlib.asynccontextmanager
async def running_crmd(
    services: Urls,
    plugins: Mapping[str, Mapping[str, Any]] | None = None,
    actors: Collection[str] = ACTORS,
    **sections: Mapping[str, Any],
) -> AsyncIterator[RunningCrmd]:
    """crmd on ``services`` with the ``[plugins.<name>]`` tables ``plugins`` (and any
    other config ``sections``), its ``actors`` running and healthy, serving on a free
    port of 127.0.0.1; stopped, its data dropped, on exit."""
    port = free_port()
    server = {"host": "127.0.0.1", "port": port, **sections.pop("server", {})}
    config = make_test_config(services, server=server, plugins=plugins or {}, **sections)
    try:
        async with open_crmd(config) as crmd:
            supervisor = crmd.start(actors)
            if not await supervisor.wait_healthy(30):
                raise RuntimeError(f"crmd's actors were not healthy in 30 s: {supervisor.actors}")
            yield RunningCrmd(crmd, config.server.base_url)
    finally:
        await forget(config)


async def signed_in(url: str, email: str = TEST_EMAIL) -> aiohttp.ClientSession:
    """A session on ``url`` (paths relative to it) signed in as ``email`` by dev-login;
    close it when done (``async with``)."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url=url, timeout=timeout) as anonymous:
        answer = await anonymous.post("/api/v1/user/dev-login", json={"email": email})
        answer.raise_for_status()
        token = (await answer.json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    return aiohttp.ClientSession(base_url=url, headers=headers, timeout=timeout)


async def load_customers(
    client: aiohttp.ClientSession, csv_text: str, timeout: float = 120
) -> dict[str, Any]:
    """Upload a customers CSV and wait until it is in; the finished upload job."""
    form = aiohttp.FormData()
    form.add_field("file", csv_text.encode(), filename="customers.csv", content_type="text/csv")
    answer = await client.post("/api/v1/upload/customers", data=form)
    if answer.status not in (200, 202):  # 200: the same file, uploaded before
        raise AssertionError(f"upload refused: {answer.status} {await answer.text()}")
    upload_id = (await answer.json())["uploadId"]
    async with asyncio.timeout(timeout):
        while True:
            job: dict[str, Any] = await (await client.get(f"/api/v1/uploads/{upload_id}")).json()
            if job["status"] == "done":
                return job
            if job["status"] == "failed":
                raise AssertionError(f"upload failed: {job}")
            await asyncio.sleep(0.1)


async def wait_for_campaign(
    client: aiohttp.ClientSession, campaign_id: str, *statuses: str, timeout: float = 120
) -> dict[str, Any]:
    """The campaign once its status is one of ``statuses``; TimeoutError otherwise."""
    async with asyncio.timeout(timeout):
        while True:
            answer = await client.get(f"/api/v1/campaigns/{campaign_id}")
            campaign: dict[str, Any] = await answer.json()
            if campaign.get("status") in statuses:
                return campaign
            await asyncio.sleep(0.2)
