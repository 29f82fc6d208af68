"""Every /api/ route needs a valid crmd token, except those marked ``@public``."""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from crmd.auth.requests import is_public
from crmd.errors import Unauthorized
from crmd.http.compat import request_token
from crmd.http.keys import SIGN_IN, USER

API_PREFIX = "/api/"


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX) or is_public(request.match_info.handler):
        return await handler(request)
    token = request_token(request)
    if token is None:
        raise Unauthorized("sign in first: send Authorization: Bearer <token>")
    user = await request.app[SIGN_IN].user_for_token(token)
    request[USER] = user
    with structlog.contextvars.bound_contextvars(user_id=user.id):
        return await handler(request)
