"""Every /api/v1 route needs a valid crmd token, except those marked ``@public``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from crmd.auth.tokens import TokenError, verify_token
from crmd.auth.users import User, find_user
from crmd.errors import Forbidden, Unauthorized
from crmd.http.compat import request_token
from crmd.http.keys import RUNTIME
from crmd.store.tenant import TenantStore

API_PREFIX = "/api/v1/"
USER = web.RequestKey("user", User)
_PUBLIC = "__crmd_public__"

H = Callable[..., Awaitable[Any]]


def public(handler: H) -> H:
    """Mark a route as open to callers without a token (sign-in, signed callbacks)."""
    setattr(handler, _PUBLIC, True)
    return handler


def allowed(user: User, domains: Sequence[str], emails: Sequence[str]) -> bool:
    """The allow-list, checked on every request too, so removing someone takes effect
    at once rather than when their token expires."""
    if not domains and not emails:
        return True
    return user.email.lower() in {e.lower() for e in emails} or user.hd.lower() in {
        d.lower() for d in domains
    }


def current_user(request: web.Request) -> User:
    """The signed-in user. Handlers take the tenant from here and nowhere else."""
    return request[USER]


def tenant_store(request: web.Request) -> TenantStore:
    """The signed-in user's data, and only theirs."""
    return TenantStore(request.app[RUNTIME].db, current_user(request).id)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX) or getattr(
        request.match_info.handler, _PUBLIC, False
    ):
        return await handler(request)
    token = request_token(request)
    if token is None:
        raise Unauthorized("sign in first: send Authorization: Bearer <token>")
    runtime = request.app[RUNTIME]
    try:
        claims = verify_token(token, runtime.jwt_secret, runtime.config.auth.clock_skew_seconds)
    except TokenError as exc:
        raise Unauthorized(str(exc)) from None
    user = await find_user(runtime.db, claims.sub)
    if user is None:
        raise Unauthorized("the token's user no longer exists")
    policy = runtime.config.auth
    if user.is_dev and not policy.dev_login:
        raise Unauthorized("dev login is off: sign in with Google")
    if not allowed(user, policy.allowed_domains, policy.allowed_emails):
        raise Forbidden(f"{user.email} is no longer allowed to use this server")
    request[USER] = user
    with structlog.contextvars.bound_contextvars(user_id=user.id):
        return await handler(request)
