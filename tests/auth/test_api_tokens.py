"""The middleware: both headers work; every bad token is 401; dev login."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import jwt
import msgspec
import pytest

from crmd.app import Crmd, open_crmd
from crmd.auth import signin
from crmd.auth.tokens import issue_token
from crmd.services.embedded import Urls
from tests.conftest import crmd_with

ME = "/api/v1/user/me"


async def dev_login(client: Any, email: str = "dev@example.com") -> dict[str, Any]:
    response = await client.post("/api/v1/user/dev-login", json={"email": email})
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_bearer_and_x_access_token_both_work(client: Any):
    body = await dev_login(client)
    for headers in (
        {"Authorization": f"Bearer {body['token']}"},
        {"x-access-token": body["token"]},
    ):
        response = await client.get(ME, headers=headers)
        assert response.status == 200
        assert (await response.json())["user"]["email"] == "dev@example.com"


async def test_dev_login_answers_like_login_and_is_stable(client: Any, system: Crmd):
    first = await dev_login(client, "Dev@Example.com")
    second = await dev_login(client, "dev@example.com")
    assert first["message"] == "success"
    assert first["user"] == second["user"]
    assert set(first["user"]) == {"id", "email", "name", "picture"}
    assert await system.db.users.count_documents({}) == 1


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b", "x" * 250 + "@example.com"])
async def test_dev_login_refuses_bad_emails_with_422(client: Any, email: str, system: Crmd):
    response = await client.post("/api/v1/user/dev-login", json={"email": email})
    assert response.status == 422
    assert (await response.json())["error"]["details"] == {"field": "$.email"}
    assert await system.db.users.count_documents({}) == 0


async def test_dev_login_off_is_403_saying_so(aiohttp_client: Any, services: Urls):
    async with crmd_with(services, auth={"dev_login": False}) as crmd:
        client = await aiohttp_client(crmd.app)
        response = await client.post("/api/v1/user/dev-login", json={"email": "a@b.co"})
        assert response.status == 403
        assert (await response.json())["error"]["code"] == "dev_login_disabled"
        assert await crmd.db.users.count_documents({}) == 0


def bad_tokens(system: Crmd, user_id: str) -> dict[str, str]:
    secret = system.jwt_secret
    return {
        "malformed": "Bearer not-a-token",
        "expired": "Bearer " + issue_token(user_id, "a@b.c", secret, 60, now=1_000_000),
        "forged": "Bearer " + issue_token(user_id, "a@b.c", "f" * 40, 60),
        "alg none": "Bearer " + jwt.encode({"sub": user_id}, None, algorithm="none"),
        "wrong scheme": "Basic " + issue_token(user_id, "a@b.c", secret, 60),
    }


async def test_missing_or_bad_tokens_are_401(client: Any, system: Crmd):
    user_id = (await dev_login(client))["user"]["id"]
    response = await client.get(ME)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    for case, header in bad_tokens(system, user_id).items():
        response = await client.get(ME, headers={"Authorization": header})
        assert response.status == 401, case
        assert (await response.json())["error"]["code"] == "unauthorized", case


async def test_a_token_for_a_deleted_user_is_401(client: Any, system: Crmd):
    body = await dev_login(client)
    await system.db.users.delete_many({})
    response = await client.get(ME, headers={"Authorization": f"Bearer {body['token']}"})
    assert response.status == 401
    assert "no longer exists" in (await response.json())["error"]["message"]


async def test_unknown_api_paths_need_a_token_too(client: Any):
    assert (await client.get("/api/v1/customers-that-do-not-exist")).status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9"},
        {"Host": "crm.example.com"},
        {"X-Real-IP": "203.0.113.9"},
        {"Via": "1.1 nginx"},
        {"X-Forwarded-Host": "crm.example.com"},
        {"X-Forwarded-Proto": "https"},
        {"True-Client-IP": "203.0.113.9"},
        {"CF-Connecting-IP": "203.0.113.9"},
        {"Client-IP": "203.0.113.9"},
        {"X-Forwarded": "for=203.0.113.9"},
        {"Forwarded-For": "203.0.113.9"},
        {"X-Envoy-External-Address": "203.0.113.9"},
        {"X-ProxyUser-Ip": "203.0.113.9"},
        {"X-Original-Host": "crm.example.com"},
        {"X-Host": "crm.example.com"},
        {"X-Azure-ClientIP": "203.0.113.9"},
        {"CloudFront-Viewer-Address": "203.0.113.9:443"},
    ],
)
async def test_dev_login_refuses_proxied_or_foreign_host_callers(
    client: Any, headers: dict[str, str], system: Crmd
):
    response = await client.post(
        "/api/v1/user/dev-login", json={"email": "a@b.co"}, headers=headers
    )
    assert response.status == 403
    assert await system.db.users.count_documents({}) == 0


@contextlib.asynccontextmanager
async def restarted_with(aiohttp_client: Any, system: Crmd, **auth: Any) -> Any:
    """A client of crmd started again on the same data with other auth settings."""
    config = msgspec.structs.replace(
        system.config, auth=msgspec.structs.replace(system.config.auth, **auth)
    )
    async with open_crmd(config) as crmd:
        yield await aiohttp_client(crmd.app)


async def test_turning_dev_login_off_revokes_dev_tokens(
    client: Any, system: Crmd, aiohttp_client: Any
):
    body = await dev_login(client)
    async with restarted_with(aiohttp_client, system, dev_login=False) as later:
        response = await later.get(ME, headers={"Authorization": f"Bearer {body['token']}"})
        assert response.status == 401


async def test_allow_list_is_enforced_on_every_request(
    client: Any, system: Crmd, aiohttp_client: Any
):
    body = await dev_login(client, "someone@example.com")
    async with restarted_with(aiohttp_client, system, allowed_emails=["b@example.com"]) as later:
        response = await later.get(ME, headers={"Authorization": f"Bearer {body['token']}"})
        assert response.status == 403


async def test_dev_login_refuses_http_1_0_which_nginx_proxy_pass_speaks(client: Any, system: Crmd):
    body = b'{"email": "a@b.co"}'
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"POST /api/v1/user/dev-login HTTP/1.0\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert b" 403 " in status_line
    assert await system.db.users.count_documents({}) == 0


async def test_dev_login_emails_have_one_spelling(client: Any, system: Crmd):
    plain = await dev_login(client, "ops@example.com")
    for same in ("  OPS@Example.com ", "\u00a0ops@example.com", "\uff4fps@example.com"):
        assert (await dev_login(client, same))["user"]["id"] == plain["user"]["id"], same
    for hidden in (
        "ops@example.com\n",  # a final line break is no space to trim: refused
        "ops@example.com\r",
        "ops@example.com\r\n",
        "\tops@example.com",
        "ops@example.com\t",
        "ops\u200b@example.com",
        "ops@example.com\x00",
        "o\u202eps@example.com",
        "ops@exa\nmple.com",
        "ops@example.com\u3164",
        "ops@example.com\uffa0",
        "ops@example.com\u115f",
        "ops@example.com\u034f",
        "ops@example.com\ufe0f",
        "ops@example.com\u180b",
        "ops@example.com\u17b4",
        "o\u2800ps@example.com",
    ):
        response = await client.post("/api/v1/user/dev-login", json={"email": hidden})
        assert response.status == 422, hidden
        error = (await response.json())["error"]
        assert (error["code"], error["details"]) == ("invalid_email", {"field": "$.email"})
    assert await system.db.users.count_documents({}) == 1


async def test_a_user_deleted_after_their_token_was_used_is_refused_within_seconds(
    client: Any, system: Crmd, monkeypatch: Any
):
    monkeypatch.setattr(signin, "USER_FRESH", 0.3)
    body = await dev_login(client)
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert (await client.get(ME, headers=headers)).status == 200
    await system.db.users.delete_many({})
    await asyncio.sleep(0.4)
    response = await client.get(ME, headers=headers)
    assert response.status == 401
    assert "no longer exists" in (await response.json())["error"]["message"]
