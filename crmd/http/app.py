"""The aiohttp application: middleware, routes, and the runtime it serves from."""

from __future__ import annotations

from aiohttp import web

from crmd.auth import routes as auth_routes
from crmd.auth.middleware import authenticate
from crmd.http import health
from crmd.http.keys import RUNTIME
from crmd.http.middleware import errors, metrics, request_context
from crmd.ingest import routes as ingest_routes
from crmd.runtime.context import Runtime

MAX_BODY = 1024**2
"""Bodies larger than this are refused with 413, except where a route streams its own."""


def make_app(runtime: Runtime) -> web.Application:
    app = web.Application(
        middlewares=[request_context, metrics, errors, authenticate], client_max_size=MAX_BODY
    )
    app[RUNTIME] = runtime
    app.add_routes(health.routes)
    app.add_routes(auth_routes.routes)
    app.add_routes(ingest_routes.routes)
    return app
