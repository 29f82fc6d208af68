"""The original Mini-CRM's clients, mapped onto crmd's clean API in one place."""

from __future__ import annotations

from aiohttp import web

ORIGINAL_TOKEN_HEADER = "x-access-token"


def request_token(request: web.Request) -> str | None:
    """The API token from ``Authorization: Bearer <t>``, else from the original
    clients' ``x-access-token: <t>`` header."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    legacy = request.headers.get(ORIGINAL_TOKEN_HEADER, "").strip()
    return legacy or None
