"""MongoDB or Redis down: a request that needs it gets 503 with Retry-After (never a
500), and a vendor's receipts refused during the outage arrive once it is over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from crmd.app import Crmd
from crmd.campaigns.clock import recover_stranded
from crmd.config import Config
from crmd.plugins.context import plugin_secret
from crmd.plugins.signature import signed_headers
from crmd.services.children import ServerProcess
from crmd.services.embedded import Urls
from crmd.services.servers import redis_process, secantus_process, start_and_wait
from tests.campaigns.test_delivery_loop import load, start_campaign, wait_status
from tests.conftest import make_test_config

pytestmark = pytest.mark.slow  # kills Redis and the database


@pytest.fixture
def own_servers(tmp_path: Path) -> Iterator[dict[str, ServerProcess]]:
    """A Redis (with its data on disk, as crmd runs it) and a SecantusDB of this test's
    own, to kill and start again."""
    servers = {
        "redis": redis_process(tmp_path / "redis", tmp_path),
        "mongodb": secantus_process(None, tmp_path),
    }
    for server in servers.values():
        asyncio.run(start_and_wait(server, 60))
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def config(
    own_servers: dict[str, ServerProcess], port: int, vendor_settings: dict[str, Any]
) -> Config:
    urls = Urls(mongodb=own_servers["mongodb"].url, redis=own_servers["redis"].url)
    return make_test_config(
        urls,
        server={"port": port},
        plugins={"dummy_vendor": vendor_settings},
        supervisor={"restart_initial_delay": 0.1, "restart_max_delay": 0.5},
    )


@pytest.fixture
async def mongo(config: Config) -> AsyncIterator[Any]:
    """This test's database goes with its server: no clean-up that could fail on it."""
    from crmd.services.connect import connect_mongo

    client = await connect_mongo(config.mongodb.url, timeout=10)
    yield client
    await client.close()


@pytest.fixture
async def redis(config: Config) -> AsyncIterator[Any]:
    from crmd.services.connect import connect_redis

    client = await connect_redis(config.redis.url, config.redis.socket_timeout, timeout=10)
    yield client
    await client.aclose()


def kill(server: ServerProcess) -> None:
    assert server.process is not None
    server.process.kill()
    server.process.wait()


async def test_redis_down_is_503_with_retry_after(
    client: Any, auth: Any, delivering: Crmd, own_servers: dict[str, ServerProcess]
):
    kill(own_servers["redis"])
    body = b'[{"status": "SENT", "timestamp": "2026-01-01T00:00:00Z", "eventId": "e1"}]'
    signed = signed_headers(
        plugin_secret(delivering.jwt_secret, "dummy_vendor"), "m1", int(time.time()), body
    )
    receipt = await client.post("/api/v1/deliveryReceipt/dummy_vendor", data=body, headers=signed)
    assert receipt.status == 503  # the vendor will try again: nothing is lost
    assert receipt.headers["Retry-After"] == "5"
    asked = time.monotonic()
    upload = await client.post(
        "/api/v1/upload/customers?filename=a.csv",
        data=b"name,email\nA,a@x.io\n",
        headers={**auth, "Content-Type": "text/csv"},
    )
    assert upload.status == 503
    # Said at once, not after the Redis client's retries (its default took 40 s here;
    # a busy machine may take a few seconds to answer anything).
    assert time.monotonic() - asked < 20
    assert (await upload.json())["error"]["code"] == "unavailable"
    [job] = [j async for j in delivering.db.uploads.find({})]
    assert job["status"] == "failed" and job["reason"].startswith("could not queue")
    # Reads that need only MongoDB still work.
    assert (await client.get("/api/v1/customers", headers=auth)).status == 200


async def test_mongodb_down_is_503_with_retry_after(
    client: Any, auth: Any, own_servers: dict[str, ServerProcess]
):
    kill(own_servers["mongodb"])
    for path in ("/api/v1/customers", "/api/v1/campaigns", "/api/v1/user/me"):
        response = await client.get(path, headers=auth)
        assert response.status == 503, path
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["error"]["code"] == "unavailable"


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    """Receipts come a second or two after the send, and are retried quickly."""
    return {
        "delay_min": 1.5,
        "delay_max": 2.0,
        "seed": 3,
        "failure_rate": 0.1,
        "callback_retry_delay": 0.2,
        "callback_retry_max_delay": 1.0,
    }


async def test_receipts_refused_while_redis_is_down_arrive_after_it_returns(
    client: Any, auth: Any, delivering: Crmd, own_servers: dict[str, ServerProcess]
):
    await load(client, auth)
    campaign = await start_campaign(
        client, auth, "Outage", "Hi {first_name}", "spend > 10000 AND visits < 3"
    )
    with capture_logs() as logs:
        await wait_status(client, auth, campaign["id"], "sent")
        redis = own_servers["redis"]
        kill(redis)  # every receipt is still on its way
        async with asyncio.timeout(30):  # until crmd has refused one with 503
            while not any(e.get("error") == "HTTP 503" for e in logs):
                await asyncio.sleep(0.05)
        redis.stop()
        await start_and_wait(redis, 30)  # the same port, the same data
        done = await wait_status(client, auth, campaign["id"], "completed", timeout=90)
    refused = [e for e in logs if e["event"] == "dummy_vendor.callback_failed"]
    assert any(e["error"] == "HTTP 503" for e in refused), refused
    stats = done["stats"]
    assert stats["pending"] == 0 and stats["unknown"] == 0
    assert stats["sent"] + stats["failed"] == campaign["audienceSize"] == 100


async def test_a_campaign_created_while_redis_is_down_is_queued_once_and_planned_later(
    client: Any, auth: Any, delivering: Crmd, own_servers: dict[str, ServerProcess]
):
    """A 503 after the campaign was stored told the client to send it again: twice."""
    await load(client, auth)
    redis = own_servers["redis"]
    kill(redis)
    with capture_logs() as logs:
        created = await client.post(
            "/api/v1/campaigns",
            json={"name": "Outage", "message": "Hi", "rule": "spend > 10000"},
            headers=auth,
        )
    assert created.status == 201
    campaign = await created.json()
    assert campaign["status"] == "queued"
    assert [e["event"] for e in logs if e["event"] == "campaign.plan_deferred"]
    assert await delivering.db.campaigns.count_documents({}) == 1
    redis.stop()
    await start_and_wait(redis, 30)
    later = datetime.now(UTC) + timedelta(hours=1)
    queued = await recover_stranded(
        delivering.db, delivering.redis, delivering.streams.dispatch, 30, later
    )
    assert queued == 1
    done = await wait_status(client, auth, campaign["id"], "sent", timeout=60)
    assert done["audienceSize"] == campaign["audienceSize"] > 0
