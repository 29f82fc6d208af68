"""The daemon's life: start-up, serving, and the drain on SIGTERM, whatever it runs.

The composition root (``crmd.app``) hands ``run_daemon`` a function that opens
everything (servers, connections, actors) onto an exit stack and returns the running
supervisor. READY=1 goes to systemd only once every actor reports healthy; WATCHDOG=1
while they stay so. On SIGTERM or SIGINT: STOPPING=1, the actors stop in reverse order
(http first, so no new work comes in, then each stream actor finishes and acks its
batch in hand), connections close, exit 0. When a dependency crmd owns is lost for
good, the same drain and exit 1, so that systemd restarts the whole daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from crmd.runtime.supervisor import Supervisor
from crmd.runtime.systemd import Notifier

log = structlog.get_logger(__name__)

READY_TIMEOUT = 60.0

Opener = Callable[[contextlib.AsyncExitStack, asyncio.Event], Awaitable[Supervisor]]
"""Opens crmd onto the stack and returns its started supervisor; the event is set when
a dependency crmd owns cannot be brought back."""


class StartupError(Exception):
    """crmd could not start; the message is the one line an operator needs."""


async def run_daemon(
    open_crmd: Opener, environ: Mapping[str, str], url: str, shutdown_timeout: float
) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or a lost dependency (exit 1)."""
    notifier = Notifier(environ)
    stop = asyncio.Event()
    lost = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    ready = False
    exit_code = 0

    def on_signal(signum: signal.Signals) -> None:
        log.info("crmd.signal", signal=signum.name, phase="serving" if ready else "starting")
        if ready:
            stop.set()
        else:  # still starting: abandon start-up, which stops what it started
            main.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        async with contextlib.AsyncExitStack() as stack:
            supervisor = await open_crmd(stack, lost)
            healthy = asyncio.ensure_future(supervisor.wait_healthy(READY_TIMEOUT))
            await _first(healthy, lost.wait())
            if lost.is_set():
                log.critical("crmd.dependency_lost", action="giving up start-up")
                raise StartupError("a server crmd owns died during start-up and would not restart")
            if not healthy.result():
                raise StartupError(
                    f"actors not healthy after {READY_TIMEOUT:.0f}s: {supervisor.report()}"
                )
            ready = True
            notifier.notify("READY=1", f"STATUS=serving on {url}")
            log.info("crmd.ready", url=url, actors=[a.name for a in supervisor.actors])
            watchdog = asyncio.create_task(_watchdog(notifier, supervisor))
            try:
                await _first(stop.wait(), lost.wait())
                if lost.is_set():
                    log.critical("crmd.dependency_lost", action="exiting for a restart")
                    exit_code = 1
            finally:
                notifier.notify("STOPPING=1", "STATUS=draining")
                watchdog.cancel()
                log.info("crmd.stopping", timeout=shutdown_timeout)
                clean = await supervisor.stop(shutdown_timeout)
                log.info("crmd.stopped", clean=clean)
    except asyncio.CancelledError:
        if ready:
            raise
        log.info("crmd.start_abandoned")
        return 0
    except StartupError as exc:
        log.error("crmd.start_failed", error=str(exc))
        raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return exit_code


async def _first(*waits: Awaitable[Any]) -> None:
    """Wait until the first of ``waits`` finishes; cancel the others (a finished task
    keeps its result)."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def ensure_can_listen(host: str, port: int) -> None:
    """Fail at once, with the reason, when the API's address is taken or not ours."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StartupError(f"cannot listen on {host}:{port}: {reason}") from None


async def _watchdog(notifier: Notifier, supervisor: Supervisor) -> None:
    """WATCHDOG=1 while the loop turns and every actor is healthy; silence otherwise,
    so systemd restarts a daemon that is stuck."""
    interval = notifier.watchdog_interval
    if interval is None:
        return
    while True:
        if supervisor.healthy():
            notifier.notify("WATCHDOG=1")
        else:
            log.warning("crmd.watchdog_withheld", actors=supervisor.report())
        await asyncio.sleep(interval)
