"""Every /api/ route needs a valid crmd token or API key, except those marked ``@public``.
What the caller may do there is the guard's (``crmd.workspaces.guard``)."""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from crmd.auth.requests import is_public
from crmd.errors import Forbidden, Unauthorized
from crmd.http.compat import request_token
from crmd.http.keys import ACCESS, CALLER, SIGN_IN, USER
from crmd.workspaces.access import WORKSPACE_HEADER, is_key

API_PREFIX = "/api/"


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX) or is_public(request.match_info.handler):
        return await handler(request)
    token = request_token(request)
    if token is None:
        raise Unauthorized("sign in first: send Authorization: Bearer <token>")
    access = request.app[ACCESS]
    address = request.remote or ""
    if is_key(token):
        caller = await access.for_key(token, address)
        named = request.headers.get(WORKSPACE_HEADER, "").strip()
        if named and named != caller.workspace:  # a key works in its own workspace only
            raise Forbidden(
                "an API key works in its own workspace only: send no X-Crmd-Workspace "
                "with it (or its own workspace's id)",
                code="key_workspace",
            )
        request[CALLER] = caller
        with structlog.contextvars.bound_contextvars(key_id=caller.key):
            return await handler(request)
    user, claimed = await request.app[SIGN_IN].user_and_workspace(token)
    request[USER] = user
    wanted = request.headers.get(WORKSPACE_HEADER, "").strip() or claimed
    request[CALLER] = await access.for_person(user.id, user.email, wanted, address)
    with structlog.contextvars.bound_contextvars(user_id=user.id):
        return await handler(request)
