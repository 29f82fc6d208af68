"""The http actor: serves the API until asked to stop, then drains in-flight requests."""

from __future__ import annotations

import logging
import re

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from crmd.runtime.actor import Actor, Health

log = structlog.get_logger(__name__)

MAX_REQUEST_LINE = 256 * 1024
"""The longest request line (method, path and query string) read. A query string may
carry a rule of 2,000 characters (``GET /customers?rule=``), up to 24 KB
percent-encoded, or the original clients' sign-in code (8,192 characters, up to 96 KB);
aiohttp's default (8 KB) answered those with a bare text 400 before crmd saw them."""


SERVER_LOGGER = "crmd.http.server"
"""What the actor's HTTP server (aiohttp's protocol) logs to, instead of aiohttp.server."""
_BEFORE_QUOTE = re.compile(r"[:\n]")
_QUOTED = re.compile(r"""'[^']*'?|"[^"]*"?""")


def problem_of(message: str) -> str:
    """What an aiohttp parser error says is wrong, without the request's bytes it
    quotes (after a colon, or between quotes: a header's value may be a token)."""
    said = _BEFORE_QUOTE.split(message, maxsplit=1)[0]
    return " ".join(_QUOTED.sub("…", said).split())[:100]


class UnreadableRequests(logging.Filter):
    """aiohttp logs a request it cannot parse (a NUL or another control character in
    its request line or a header, a line too long) as an error with a traceback, and
    its message quotes the offending bytes, which may be a token. That is the caller's
    mistake, already answered with a plain 400: it becomes one info line,
    ``http.bad_request``, naming the problem and not the bytes. Other lines pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno < logging.WARNING or not isinstance(exc, HttpProcessingError):
            return True
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else None
        log.info(
            "http.bad_request",
            status=exc.code,
            error=type(exc).__name__,
            problem=problem_of(exc.message),
            peer=str(peer),
        )
        return False


def server_logger() -> logging.Logger:
    """``SERVER_LOGGER``, with ``UnreadableRequests`` on it (once)."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, UnreadableRequests) for f in logger.filters):
        logger.addFilter(UnreadableRequests())
    return logger


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
            logger=server_logger(),
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
