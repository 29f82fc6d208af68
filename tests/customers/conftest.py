"""Posting customers and orders as JSON, as a client would, with the ingest actor."""

from __future__ import annotations

from typing import Any

import pytest

from crmd.app import Crmd
from crmd.store.tenant import TenantStore

Headers = dict[str, str]


async def user_id(client: Any, auth: Headers) -> str:
    me = await (await client.get("/api/v1/user/me", headers=auth)).json()
    return str(me["user"]["id"])


@pytest.fixture
async def store(client: Any, auth: Headers, system: Crmd) -> TenantStore:
    """The signed-in user's data, read straight from the database."""
    return TenantStore(system.db, await user_id(client, auth))


async def post(client: Any, auth: Headers, kind: str, body: Any, **headers: str) -> Any:
    response = await client.post(f"/api/v1/{kind}", json=body, headers={**auth, **headers})
    return response.status, await response.json()
