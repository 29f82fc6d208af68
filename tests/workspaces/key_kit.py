"""Signing in and making API keys, as the key tests do it: through the API."""

from __future__ import annotations

from typing import Any

Headers = dict[str, str]


async def sign_in(client: Any, email: str) -> tuple[Headers, str]:
    """A person's headers and id (their own workspace has that id)."""
    answer = await (await client.post("/api/v1/user/dev-login", json={"email": email})).json()
    return {"Authorization": f"Bearer {answer['token']}"}, answer["user"]["id"]


async def make_key(
    client: Any, person: Headers, *scopes: str, name: str = "script", **more: Any
) -> dict[str, Any]:
    """A key made by ``person`` in the workspace their headers work in; the answer."""
    body = {"name": name, "scopes": list(scopes), **more}
    answer = await client.post("/api/v1/keys", json=body, headers=person)
    made: dict[str, Any] = await answer.json()
    assert answer.status == 201, made
    return made


def bearer(key: str) -> Headers:
    return {"Authorization": f"Bearer {key}"}
