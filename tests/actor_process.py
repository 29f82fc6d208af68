"""What the crash tests' actor processes share: a system built from the command line,
a way to die at a chosen point, and a loop that runs a worker until the work is done.
The scripts run as modules (``python -m tests....``) from the repository's root."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from crmd.app import Crmd, open_crmd
from crmd.config import load_config
from crmd.plugins.manager import get_plugin_manager
from crmd.streams.worker import StreamWorker

SECRET = "x" * 32


@contextlib.asynccontextmanager
async def process_crmd(
    mongo_url: str,
    database: str,
    redis_url: str,
    prefix: str,
    consumer: str,
    plugins: dict[str, object] | None = None,
    **settings: Any,
) -> AsyncIterator[Crmd]:
    """crmd as a crash test's process builds it: through the composition root, on the
    test's servers. ``plugins`` replaces the installed ones; ``settings`` are more
    config keys, as ``section__key=value``."""
    config = load_config(
        None,
        {},
        {
            ("mongodb", "url"): mongo_url,
            ("mongodb", "database"): database,
            ("redis", "url"): redis_url,
            ("redis", "stream_prefix"): prefix,
            ("auth", "google_login"): False,
            ("auth", "jwt_secret"): SECRET,
            ("streams", "block_ms"): 200,
            ("streams", "consumer_name"): consumer,
            **{tuple(key.split("__")): value for key, value in settings.items()},
        },
        search=False,
    ).config
    manager = get_plugin_manager(config.plugins, load_entrypoints=False, plugins=plugins)
    async with open_crmd(config, plugin_manager=manager) as crmd:
        yield crmd


def die_at(module: Any, name: str, call: int, before: bool = False) -> None:
    """SIGKILL this process at the ``call``-th call of ``module.name``, before it runs
    or right after it returns."""
    original = getattr(module, name)
    calls = 0

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if before and calls == call:
            os.kill(os.getpid(), signal.SIGKILL)
        result = await original(*args, **kwargs)
        if calls == call:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, name, wrapper)


async def run_until(worker: StreamWorker, done: Callable[[], Awaitable[bool]]) -> None:
    stop = asyncio.Event()

    async def watch() -> None:
        while not await done():
            await asyncio.sleep(0.05)
        stop.set()

    watcher = asyncio.create_task(watch())
    await worker.run(stop)
    await watcher
