"""Connections to MongoDB and Redis, retried with a clear message while unreachable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import pymongo.errors
import redis.exceptions
import structlog
from bson.codec_options import TypeDecoder, TypeRegistry
from bson.int64 import Int64
from pymongo import AsyncMongoClient, monitoring
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from crmd.config import redact_url
from crmd.errors import Unavailable

log = structlog.get_logger(__name__)
T = TypeVar("T")

MongoClient = AsyncMongoClient[dict[str, Any]]

DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    pymongo.errors.ConnectionFailure,
)
"""MongoDB or Redis is down or restarting: the work may succeed in a moment, so it is
neither the caller's fault nor the work's (answered 503, retried, never dead-lettered)."""


class _PlainInt(TypeDecoder):
    """A BSON 64-bit integer read as a plain ``int``.

    pymongo reads every whole number beyond 32 bits (a customer's 2,147,483,648 visits)
    as ``bson.int64.Int64``, an ``int`` subclass that msgspec refuses to encode: every
    reader of such a value (the API, previews, the streams, the vendors) would fail on
    it. Decoded here, once, nothing above the driver ever sees the type. Writing needs
    nothing: pymongo stores an ``int`` beyond 32 bits as a 64-bit integer."""

    bson_type = Int64

    def transform_bson(self, value: Any) -> int:
        return int(value)


CODECS = TypeRegistry([_PlainInt()])
"""The type registry of every client crmd makes (``connect_mongo``)."""


class Misconfigured(Exception):
    """The server answers, but is not what the URL says it is: trying again cannot help."""


async def retry_until(
    what: str, url: str, attempt: Callable[[], Awaitable[T]], timeout: float
) -> T:
    """Call ``attempt`` until it succeeds, logging each failure, for at most ``timeout``
    seconds; then raise Unavailable naming the server and the last error."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay, tries = 0.25, 0
    while True:
        tries += 1
        try:
            return await attempt()
        except Misconfigured as exc:
            raise Unavailable(f"{what} at {redact_url(url)}: {exc}") from None
        except Exception as exc:
            left = deadline - loop.time()
            if left <= 0:
                raise Unavailable(
                    f"{what} at {redact_url(url)} unreachable after {tries} tries: {exc}"
                ) from None
            log.warning(
                f"{what}.unreachable",
                url=redact_url(url),
                tries=tries,
                retry_in=round(delay, 2),
                error=str(exc),
            )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


async def connect_mongo(
    url: str,
    timeout: float,
    listeners: Sequence[monitoring.CommandListener] = (),
    connections: int = 100,
) -> MongoClient:
    """A client for ``url``, once the server answers. ``connections``: the most commands
    it has in flight at once (pymongo's pool); more wait for a connection in crmd."""
    # maxIdleTimeMS: a connection idle for a minute is opened afresh rather than trusted;
    # SecantusDB closes idle ones, and pymongo does not retry every command on a closed
    # connection (a drop after fifteen idle minutes failed with AutoReconnect).
    client: MongoClient = AsyncMongoClient(
        url,
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        tz_aware=True,
        type_registry=CODECS,
        maxIdleTimeMS=60_000,
        # A database that has not answered in a minute is treated as down (503), not
        # waited on for ever.
        socketTimeoutMS=60_000,
        event_listeners=list(listeners),
        maxPoolSize=connections,
    )

    async def ping() -> MongoClient:
        await client.admin.command("ping")
        return client

    try:
        return await retry_until("mongodb", url, ping, timeout)
    except BaseException:
        await client.close()
        raise


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
"""``redis+cluster://node:6379`` (or ``rediss+cluster://``): a Redis Cluster, found from
any one of its nodes."""


def redis_client(url: str, socket_timeout: float) -> Redis:
    """A client for the URL: one server, or a Redis Cluster. crmd's keys keep each
    stream and everything kept about it in one hash slot, so the two are used alike (the
    cluster client routes each command by its key)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in CLUSTER_SCHEMES:
        cluster = RedisCluster.from_url(
            f"{CLUSTER_SCHEMES[scheme]}://{rest}",
            socket_timeout=socket_timeout,
            socket_connect_timeout=3,
        )
        return cast(Redis, cluster)
    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=3,
        health_check_interval=30,
        # redis-py's default retries a refused connection for up to half a minute
        # (three times, backing off up to 10 s): a request would hang that long
        # before its 503. A blip is still ridden out; an outage is said at once.
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
    )


@contextlib.asynccontextmanager
async def dedicated_connection(redis: Redis, key: str) -> AsyncIterator[Connection]:
    """A connection of its own, to the server holding ``key`` (on a cluster: its slot's
    primary), for a conversation no other command may interleave with (a streamed
    MULTI). The caller disconnects it when the conversation broke off half-way."""
    if isinstance(redis, RedisCluster):
        node = redis.get_node_from_key(key)
        connection = node.acquire_connection()
        try:
            yield connection
        finally:
            node.release(connection)
        return
    pool = redis.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        yield connection
    finally:
        await pool.release(connection)


async def connect_redis(url: str, socket_timeout: float, timeout: float) -> Redis:
    client = redis_client(url, socket_timeout)

    async def ping() -> Redis:
        try:
            await client.ping()
        except redis.exceptions.RedisClusterException as exc:
            if "cluster mode is not enabled" in str(exc).lower():
                raise Misconfigured(
                    "a redis+cluster:// URL, but the server is not a Redis Cluster node "
                    "(use redis:// for a single server)"
                ) from None
            raise
        return client

    try:
        return await retry_until("redis", url, ping, timeout)
    except BaseException:
        await client.aclose()
        raise
