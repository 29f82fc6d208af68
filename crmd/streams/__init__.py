"""Redis Streams: the names crmd uses and the worker that consumes them."""

from __future__ import annotations

import socket

import msgspec

from crmd.config import StreamsConfig

GROUP = "crmd"
"""Every crmd process joins the same consumer group per stream, so they share the work."""


def consumer_name(settings: StreamsConfig) -> str:
    """This process's consumer name: configured, else the host name. A stable name lets a
    restarted process drain the entries it held when it stopped."""
    return settings.consumer_name or socket.gethostname()


class StreamNames(msgspec.Struct, frozen=True):
    ingest: str
    dispatch: str
    receipts: str

    @classmethod
    def for_prefix(cls, prefix: str) -> StreamNames:
        return cls(
            ingest=f"{prefix}:ingest", dispatch=f"{prefix}:dispatch", receipts=f"{prefix}:receipts"
        )

    def all(self) -> list[str]:
        return [self.ingest, self.dispatch, self.receipts]
