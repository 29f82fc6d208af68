"""Redis Streams: the names crmd uses and the worker that consumes them."""

from __future__ import annotations

import msgspec

GROUP = "crmd"
"""Every crmd process joins the same consumer group per stream, so they share the work."""


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
