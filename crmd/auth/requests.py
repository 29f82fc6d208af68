"""Who is asking: the signed-in user of a request, and the data that is theirs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from crmd.auth.users import User
from crmd.http.describe import PUBLIC
from crmd.http.keys import DATABASE, USER
from crmd.store.tenant import TenantStore

H = Callable[..., Awaitable[Any]]


def public(handler: H) -> H:
    """Mark a route as open to callers without a token (sign-in, signed callbacks)."""
    setattr(handler, PUBLIC, True)
    return handler


def is_public(handler: object) -> bool:
    return bool(getattr(handler, PUBLIC, False))


def current_user(request: web.Request) -> User:
    """The signed-in user. Handlers take the tenant from here and nowhere else."""
    return request[USER]


def tenant_store(request: web.Request) -> TenantStore:
    """The signed-in user's data, and only theirs."""
    return TenantStore(request.app[DATABASE], current_user(request).id)
