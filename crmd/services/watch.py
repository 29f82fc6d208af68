"""Keeping the embedded servers alive: crmd owns them, so when one dies crmd starts it
again, on the same port and over the same data, and the clients reconnect by themselves.
One that will not come back (its data or port is gone) is reported, and the daemon then
exits non-zero so that systemd restarts the whole of it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from crmd.services.children import EmbeddedError, ServerProcess
from crmd.services.servers import start_and_wait

log = structlog.get_logger(__name__)

CHECK_INTERVAL = 0.5
MAX_ATTEMPTS = 5
"""Restarts tried, with back-off, before a server is given up for lost."""
FIRST_DELAY = 0.5
MAX_DELAY = 15.0


async def bring_back(server: ServerProcess, timeout: float) -> bool:
    """Start a dead server again; True once it answers, False after MAX_ATTEMPTS."""
    delay = FIRST_DELAY
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            await start_and_wait(server, timeout)
        except EmbeddedError as exc:
            log.error(
                "embedded.restart_failed", server=server.name, attempt=attempt, error=str(exc)[:500]
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
            continue
        log.warning(
            "embedded.restarted",
            server=server.name,
            attempt=attempt,
            pid=server.process.pid if server.process else None,
        )
        return True
    return False


async def watch_servers(
    servers: Sequence[ServerProcess], timeout: float, lost: asyncio.Event
) -> None:
    """Until cancelled: restart whichever server died; set ``lost`` and return when one
    cannot be brought back."""
    while True:
        await asyncio.sleep(CHECK_INTERVAL)
        for server in servers:
            if server.running:
                continue
            log.error(
                "embedded.died", server=server.name, code=server.exit_code, log=server.log_tail()
            )
            server.stop()  # closes its log file; the process is already gone
            if not await bring_back(server, timeout):
                log.critical("embedded.lost", server=server.name, attempts=MAX_ATTEMPTS)
                lost.set()
                return
