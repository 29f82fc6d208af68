"""The daemon: start-up, serving, and the drain on SIGTERM.

Start-up, in order: the embedded servers (when the URLs say ``embedded``), MongoDB and
Redis (retried while unreachable), indexes and consumer groups, the actors; READY=1 goes
to systemd only once every actor reports healthy. On SIGTERM or SIGINT: STOPPING=1, the
actors stop in reverse order (http first, so no new work comes in, then each stream
actor finishes and acks its batch in hand), connections close, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from crmd.auth.secret import SecretError, resolve_jwt_secret
from crmd.campaigns.actor import dispatch_actor
from crmd.campaigns.clock import ClockActor
from crmd.config import Config, redact_url
from crmd.errors import Unavailable
from crmd.http.actor import HttpActor
from crmd.http.app import make_app
from crmd.ingest.actor import ingest_actor
from crmd.plugins.manager import make_plugin_manager
from crmd.receipts.actor import receipts_actor
from crmd.runtime.actor import Actor
from crmd.runtime.context import Runtime
from crmd.runtime.supervisor import Supervisor
from crmd.runtime.systemd import Notifier
from crmd.services.connect import connect_mongo, connect_redis
from crmd.services.embedded import embedded_services
from crmd.services.servers import EmbeddedError
from crmd.store.indexes import ensure_indexes
from crmd.streams import GROUP
from crmd.streams.worker import ensure_group

log = structlog.get_logger(__name__)

READY_TIMEOUT = 60.0


class StartupError(Exception):
    """crmd could not start; the message is the one line an operator needs."""


async def prepare_storage(runtime: Runtime) -> None:
    """Indexes and consumer groups exist before any actor or request needs them."""
    await ensure_indexes(runtime.db)
    for stream in runtime.streams.all():
        await ensure_group(runtime.redis, stream, GROUP)


def build_actors(runtime: Runtime) -> list[Actor]:
    """crmd's own actors, then any that plugins contribute; http starts last and so
    stops first."""
    config = runtime.config
    actors: list[Actor] = [
        ingest_actor(runtime), dispatch_actor(runtime), receipts_actor(runtime),
        ClockActor(runtime),
    ]  # fmt: skip
    for contributed in runtime.plugins.hook.crmd_actors(runtime=runtime):
        actors.extend(contributed)
    app = make_app(runtime)
    # Half the stop budget at most for requests in flight, so that the stream actors
    # always have time to finish and ack their batch.
    drain = config.server.shutdown_timeout / 2
    actors.append(HttpActor(app, config.server.host, config.server.port, drain))
    return actors


async def serve(config: Config, environ: Mapping[str, str]) -> int:
    """Run crmd until SIGTERM/SIGINT. Returns the process exit code."""
    notifier = Notifier(environ)
    stop = asyncio.Event()
    lost = asyncio.Event()
    """Set when an embedded server died and could not be started again."""
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
            runtime = await _start(config, stack, lost)
            supervisor = runtime.supervisor
            assert supervisor is not None
            if not await supervisor.wait_healthy(READY_TIMEOUT):
                raise StartupError(
                    f"actors not healthy after {READY_TIMEOUT:.0f}s: {supervisor.report()}"
                )
            ready = True
            url = f"http://{config.server.host}:{config.server.port}"
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
                log.info("crmd.stopping", timeout=config.server.shutdown_timeout)
                clean = await supervisor.stop(config.server.shutdown_timeout)
                log.info("crmd.stopped", clean=clean)
    except asyncio.CancelledError:
        if ready:
            raise
        log.info("crmd.start_abandoned")
        return 0
    except (StartupError, Unavailable, EmbeddedError, SecretError) as exc:
        log.error("crmd.start_failed", error=str(exc))
        raise StartupError(str(exc)) from None
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return exit_code


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of ``waits`` finishes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
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


async def _start(config: Config, stack: contextlib.AsyncExitStack, lost: asyncio.Event) -> Runtime:
    ensure_can_listen(config.server.host, config.server.port)
    resolve_jwt_secret(config)  # before anything starts: no secret, no start
    urls = await stack.enter_async_context(
        embedded_services(
            config.mongodb.url,
            config.redis.url,
            Path(config.embedded.data_dir),
            config.embedded.start_timeout,
            lost,
        )
    )
    log.info("crmd.connecting", mongodb=redact_url(urls.mongodb), redis=redact_url(urls.redis))
    mongo = await connect_mongo(urls.mongodb, config.mongodb.connect_timeout)
    stack.push_async_callback(mongo.close)
    redis = await connect_redis(
        urls.redis, config.redis.socket_timeout, config.redis.connect_timeout
    )
    stack.push_async_callback(redis.aclose)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    stack.push_async_callback(http.close)
    plugins = make_plugin_manager(config.plugins)
    runtime = Runtime(
        config=config,
        mongo=mongo,
        redis=redis,
        plugins=plugins,
        http=http,
        jwt_secret=resolve_jwt_secret(config),
    )
    await prepare_storage(runtime)
    runtime.load_vendors()
    runtime.load_suggesters()
    stack.push_async_callback(runtime.vendors.close)
    supervisor = Supervisor(
        build_actors(runtime),
        runtime.metrics,
        initial_delay=config.supervisor.restart_initial_delay,
        max_delay=config.supervisor.restart_max_delay,
    )
    runtime.supervisor = supervisor
    supervisor.start()
    # Should start-up fail from here on, the actors are stopped before connections close.
    stack.push_async_callback(supervisor.stop, config.server.shutdown_timeout)
    return runtime


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
