"""Redis Streams: the names crmd uses and the worker that consumes them."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from crmd.config import StreamsConfig

if TYPE_CHECKING:  # the package is imported by its schema, which the client needs
    from redis.asyncio import Redis

log = structlog.get_logger(__name__)

GROUP = "crmd"
"""Every crmd process joins the same consumer group per stream, so they share the work."""


def consumer_name(settings: StreamsConfig) -> str:
    """This process's consumer name: configured, else the host name. A stable name lets a
    restarted process drain the entries it held when it stopped."""
    return settings.consumer_name or socket.gethostname()


def text_of(value: Any) -> str:
    """A Redis reply's id or key as text (the client answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def stream_name(prefix: str, name: str) -> str:
    """``{crmd:ingest}``: the braces are a Redis Cluster hash tag. Every key crmd keeps
    about a stream is named ``<stream>:...`` (its dead letters, counters, markers), so
    all of them sit in the stream's hash slot, and the transactions that touch a stream
    and its keys together work on a cluster."""
    return f"{{{prefix}:{name}}}"


async def rename_old_keys(redis: Redis, prefix: str) -> int:
    """Move the keys of crmd before 0.17 (``crmd:ingest``, ``crmd:ingest:dead``...)
    to the hash-tagged names, groups and pending entries with them; the number moved.
    A key whose new name is taken already is left, and logged."""
    from redis.exceptions import ResponseError  # (not at import: see ``Redis`` above)

    moved = 0
    for name in StreamNames.__struct_fields__:
        old, new = f"{prefix}:{name}", stream_name(prefix, name)
        # The stream itself is moved last: while it is there, the move is unfinished
        # (a start-up killed half way finishes it), and once it is gone there is
        # nothing to look for, so a start-up does not scan the keyspace for ever.
        if not await redis.exists(old):
            continue
        pairs = []
        async for key in redis.scan_iter(match=f"{old}:*", count=1000):
            text = text_of(key)
            pairs.append((text, new + text[len(old) :]))
        for source, target in [*pairs, (old, new)]:
            try:
                renamed = await redis.renamenx(source, target)
            except ResponseError as exc:
                if "no such key" not in str(exc).lower():
                    raise
                continue  # another process starting at the same time moved it
            if renamed:
                moved += 1
            else:
                log.warning("streams.old_key_left", key=source, taken=target)
    if moved:
        log.info("streams.keys_renamed", keys=moved)
    return moved


class StreamNames(msgspec.Struct, frozen=True):
    ingest: str
    dispatch: str
    receipts: str
    tracking: str
    events: str
    flows: str

    @classmethod
    def for_prefix(cls, prefix: str) -> StreamNames:
        return cls(**{name: stream_name(prefix, name) for name in cls.__struct_fields__})

    def all(self) -> list[str]:
        return [self.ingest, self.dispatch, self.receipts, self.tracking, self.events, self.flows]
