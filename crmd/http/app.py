"""The aiohttp application: middleware, routes, and the runtime it serves from."""

from __future__ import annotations

import sys

from aiohttp import web

from crmd.ai import routes as ai_routes
from crmd.auth import routes as auth_routes
from crmd.auth.middleware import authenticate
from crmd.campaigns import routes as campaign_routes
from crmd.http import health
from crmd.http.keys import RUNTIME
from crmd.http.middleware import errors, metrics, request_context
from crmd.ingest import routes as ingest_routes
from crmd.receipts import routes as receipt_routes
from crmd.runtime.context import Runtime
from crmd.segments import routes as segment_routes

MAX_BODY = 1024**2
"""Bodies larger than this are refused with 413, except where a route streams its own."""


SWITCH_INTERVAL = 0.001


def make_app(runtime: Runtime) -> web.Application:
    # Uploads are parsed in worker threads beside the event loop. With CPython's default
    # 5 ms GIL switch interval a request waits up to 5 ms at every hand-over, and a
    # request needs many: /healthz took 200-300 ms during a 200k-row upload. At 1 ms it
    # stays under 10 ms, with the same parse speed (measured).
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
    app = web.Application(
        middlewares=[request_context, metrics, errors, authenticate], client_max_size=MAX_BODY
    )
    app[RUNTIME] = runtime
    app.add_routes(health.routes)
    app.add_routes(auth_routes.routes)
    app.add_routes(ingest_routes.routes)
    app.add_routes(segment_routes.routes)
    app.add_routes(campaign_routes.routes)
    app.add_routes(receipt_routes.routes)
    app.add_routes(ai_routes.routes)
    return app
