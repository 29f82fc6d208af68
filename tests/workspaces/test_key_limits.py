"""What bounds a key: its requests a minute, counted in Redis for every crmd process
at once, and the live keys a workspace may hold."""

from __future__ import annotations

from typing import Any

import pytest

from crmd.config import Config
from crmd.errors import TooManyRequests
from crmd.services.embedded import Urls
from crmd.testing import make_test_config
from crmd.workspaces.rates import KeyRates
from tests.workspaces.key_kit import bearer, make_key, sign_in

PER_MINUTE = 5
LIVE = 3


@pytest.fixture
def config(services: Urls, port: int) -> Config:
    return make_test_config(
        services,
        server={"port": port},
        keys={"requests_per_minute": PER_MINUTE, "max_per_workspace": LIVE},
    )


async def test_a_key_past_its_requests_a_minute_is_told_to_wait(client: Any):
    owner, _ = await sign_in(client, "owner@example.com")
    busy = bearer((await make_key(client, owner, "read"))["key"])
    other = bearer((await make_key(client, owner, "read"))["key"])
    for n in range(PER_MINUTE):
        assert (await client.get("/api/v1/customers", headers=busy)).status == 200, n
    refused = await client.get("/api/v1/customers", headers=busy)
    error = (await refused.json())["error"]
    assert refused.status == 429 and error["code"] == "rate_limited"
    assert error["details"] == {"limit": PER_MINUTE, "window": "60s"}
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    # The limit is the key's: another key of the workspace, and its people, go on.
    assert (await client.get("/api/v1/customers", headers=other)).status == 200
    for _ in range(PER_MINUTE + 1):
        assert (await client.get("/api/v1/customers", headers=owner)).status == 200


async def test_processes_sharing_redis_share_each_keys_count(redis: Any, config: Config):
    """Two crmd processes (here two limiters on one Redis) let N through in all."""
    prefix = config.redis.stream_prefix
    first, second = (KeyRates(redis, prefix, PER_MINUTE) for _ in range(2))
    taken = 0
    for n in range(2 * PER_MINUTE):
        try:
            await (first if n % 2 else second).take("k1")
            taken += 1
        except TooManyRequests as exc:
            assert exc.retry_after is not None and 1 <= exc.retry_after <= 60
    assert taken == PER_MINUTE
    assert await redis.zcard(first.redis_key("k1")) == PER_MINUTE  # refusals not counted
    assert 0 < await redis.pttl(first.redis_key("k1")) <= 61_000


async def test_a_window_that_has_passed_lets_the_key_in_again(redis: Any, config: Config):
    rates = KeyRates(redis, config.redis.stream_prefix, 2)
    await rates.take("k2")
    await rates.take("k2")
    with pytest.raises(TooManyRequests):
        await rates.take("k2")
    # As if a minute went by: the requests' moments move back 61 seconds.
    key = rates.redis_key("k2")
    moments = await redis.zrange(key, 0, -1, withscores=True)
    await redis.zadd(key, {member: score - 61_000_000 for member, score in moments})
    await rates.take("k2")


async def test_no_limit_when_the_setting_is_zero(redis: Any, config: Config):
    rates = KeyRates(redis, config.redis.stream_prefix, 0)
    for _ in range(50):
        await rates.take("k3")
    assert not await redis.exists(rates.redis_key("k3"))


async def test_a_workspace_holds_a_bounded_number_of_live_keys(client: Any, system: Any):
    owner, _ = await sign_in(client, "owner@example.com")
    made = [await make_key(client, owner, "read") for _ in range(LIVE)]
    refused = await client.post(
        "/api/v1/keys", json={"name": "one more", "scopes": ["read"]}, headers=owner
    )
    assert refused.status == 409
    assert (await refused.json())["error"]["code"] == "too_many_keys"
    # A revoked key no longer counts.
    assert (await client.delete(f"/api/v1/keys/{made[0]['id']}", headers=owner)).status == 204
    await make_key(client, owner, "read")
    listed = await (await client.get("/api/v1/keys", headers=owner)).json()
    assert listed["total"] == LIVE + 1
    assert [k["state"] for k in listed["items"]].count("live") == LIVE
