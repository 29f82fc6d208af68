"""The http actor: serves the API until asked to stop, then drains in-flight requests."""

from __future__ import annotations

from aiohttp import web

from crmd.runtime.actor import Actor, Health

MAX_REQUEST_LINE = 256 * 1024
"""The longest request line (method, path and query string) read. A query string may
carry a rule of 2,000 characters (``GET /customers?rule=``), up to 24 KB
percent-encoded, or the original clients' sign-in code (8,192 characters, up to 96 KB);
aiohttp's default (8 KB) answered those with a bare text 400 before crmd saw them."""


class HttpActor(Actor):
    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        drain_timeout: float,
        name: str = "http",
    ) -> None:
        super().__init__(name)
        self.app = app
        self.host = host
        self.port = port
        self.drain_timeout = drain_timeout

    async def run(self) -> None:
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=self.drain_timeout,
            handle_signals=False,
            max_line_size=MAX_REQUEST_LINE,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
            self.health = Health.OK
            await self.stopping.wait()
        finally:
            # Stops listening first, then waits for the requests in flight.
            await runner.cleanup()
