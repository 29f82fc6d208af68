"""Who is asking: the signed-in user of a request, and the data that is theirs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from crmd.auth.users import User
from crmd.errors import Forbidden
from crmd.http.describe import PUBLIC
from crmd.http.keys import USER
from crmd.workspaces.requests import caller as caller
from crmd.workspaces.requests import tenant_id as tenant_id
from crmd.workspaces.requests import tenant_store as tenant_store

H = Callable[..., Awaitable[Any]]


def public(handler: H) -> H:
    """Mark a route as open to callers without a token (sign-in, signed callbacks)."""
    setattr(handler, PUBLIC, True)
    return handler


def is_public(handler: object) -> bool:
    return bool(getattr(handler, PUBLIC, False))


def current_user(request: web.Request) -> User:
    """The signed-in person (a key has none: routes for people only are guarded)."""
    if USER not in request:
        raise Forbidden("an API key cannot do this; sign in as a person", code="person_only")
    return request[USER]
