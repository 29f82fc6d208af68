"""Cross-origin requests, for browser clients served from another origin (the original
Mini-CRM frontend is one): only the exact origins in ``[server] cors_origins``, never a
wildcard. A preflight from such an origin is answered here, before authentication;
every answer to it says so (``Access-Control-Allow-Origin`` with that origin, ``Vary:
Origin``), streamed answers and errors included; an origin not listed gets no CORS
header at all, and the browser refuses."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

METHODS = "GET, POST, PUT, DELETE"
ALLOWED_HEADERS = "Authorization, x-access-token, Content-Type, Idempotency-Key, X-Request-ID"
EXPOSED_HEADERS = "X-Request-ID, Retry-After"
MAX_AGE_SECONDS = 600


class Cors:
    def __init__(self, origins: Collection[str]) -> None:
        self.allowed = {origin.lower(): origin for origin in origins}
        """Browsers send origins in lower case; the answer names the configured one."""

    def middleware(self) -> Middleware:
        """Answers the preflight of an allowed origin, before authentication."""

        @web.middleware
        async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
            origin = request.headers.get("Origin", "").lower()
            if (
                request.method == "OPTIONS"
                and origin in self.allowed
                and "Access-Control-Request-Method" in request.headers
            ):
                return web.Response(
                    status=204,
                    headers={
                        "Access-Control-Allow-Methods": METHODS,
                        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
                    },
                )
            return await handler(request)

        return preflight

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Just before any answer's headers go out: say it may be read by the origin."""
        if not self.allowed:
            return
        response.headers.add("Vary", "Origin")  # the answer differs by origin, for caches
        origin = self.allowed.get(request.headers.get("Origin", "").lower())
        if origin is None:
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
