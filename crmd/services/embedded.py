"""The embedded default: crmd starts and owns a local Redis and a local SecantusDB,
under its data dir, watches them while it runs and stops them when it exits.
The test fixtures start their servers through the same code (``crmd.services.servers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec

from crmd.services.children import EmbeddedError, open_private
from crmd.services.servers import redis_process, secantus_process, start_and_wait
from crmd.services.watch import watch_servers

URLS_FILE = "urls.json"


class DataDirBusy(EmbeddedError):
    """Another crmd owns this data dir (and its embedded servers)."""


class Urls(msgspec.Struct, frozen=True):
    mongodb: str
    redis: str


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One crmd per data dir: two would corrupt each other's embedded stores. The dir
    is crmd's user's alone (0700): it holds the data and the servers' passwords."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    with open_private(data_dir / "crmd.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise DataDirBusy(
                f"data dir {data_dir} is in use by another crmd (pid {handle.read().strip()})"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.asynccontextmanager
async def embedded_services(
    mongodb_url: str,
    redis_url: str,
    data_dir: Path,
    timeout: float,
    lost: asyncio.Event | None = None,
) -> AsyncIterator[Urls]:
    """Start whichever of the two URLs is ``embedded`` and yield the real URLs; stop what
    was started on exit, also when start-up fails half way. While they run, a server
    that dies is started again; ``lost`` is set if one cannot be."""
    wanted = [
        name for name, url in (("mongodb", mongodb_url), ("redis", redis_url)) if url == "embedded"
    ]
    if not wanted:
        yield Urls(mongodb=mongodb_url, redis=redis_url)
        return
    with data_dir_lock(data_dir), contextlib.ExitStack() as stack:
        urls = {"mongodb": mongodb_url, "redis": redis_url}
        servers = []
        for name in wanted:
            server = (
                secantus_process(data_dir / "mongodb", data_dir)
                if name == "mongodb"
                else redis_process(data_dir / "redis", data_dir)
            )
            await start_and_wait(server, timeout)
            stack.callback(server.stop)
            servers.append(server)
            urls[name] = server.url
        # So that `crmd token` and other commands can reach the servers of a running crmd.
        published = data_dir / URLS_FILE
        published.touch(mode=0o600)  # it holds the passwords
        published.write_bytes(msgspec.json.encode(Urls(**urls)))
        stack.callback(published.unlink, missing_ok=True)
        watcher = asyncio.create_task(watch_servers(servers, timeout, lost or asyncio.Event()))
        try:
            yield Urls(**urls)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


@contextlib.asynccontextmanager
async def attach_services(
    mongodb_url: str, redis_url: str, data_dir: Path, timeout: float
) -> AsyncIterator[Urls]:
    """For commands beside the daemon: the running crmd's embedded servers when it owns
    the data dir, else servers started for the command (or the real URLs)."""
    try:
        async with embedded_services(mongodb_url, redis_url, data_dir, timeout) as urls:
            yield urls
            return
    except DataDirBusy:
        pass
    try:
        published = msgspec.json.decode((data_dir / URLS_FILE).read_bytes(), type=Urls)
    except (OSError, msgspec.DecodeError) as exc:
        raise EmbeddedError(
            f"the crmd that owns {data_dir} has not published its servers: {exc}"
        ) from None
    yield Urls(
        mongodb=published.mongodb if mongodb_url == "embedded" else mongodb_url,
        redis=published.redis if redis_url == "embedded" else redis_url,
    )
