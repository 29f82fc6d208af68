"""The ingest stream's entries: one chunk of validated rows each, msgpack-encoded."""

from __future__ import annotations

import msgspec

from crmd.ingest.rows import CustomerRow, OrderRow
from crmd.streams.describe import Payload

FIELD = b"chunk"


class IngestChunk(msgspec.Struct, array_like=True, omit_defaults=True):
    upload: str
    user: str
    kind: str
    seq: int
    accepted_ms: int
    """When the upload was accepted: with a row's line it orders writes, so that the
    later upload (and, inside one, the later row) wins whatever order chunks land in."""
    customers: list[CustomerRow] = []
    orders: list[OrderRow] = []

    @property
    def size(self) -> int:
        return len(self.customers) + len(self.orders)

    def version(self, line: int) -> str:
        """Sortable: acceptance time, then the upload's id (uploads accepted in the same
        millisecond still have an order), then the line."""
        return f"{self.accepted_ms:014d}{self.upload}{line:09d}"


encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(IngestChunk).decode


def describe(raw: bytes) -> Payload:
    """A chunk in words, for a dead letter (``crmd.streams.describe``)."""
    chunk = decode(raw)
    rows = chunk.customers or chunk.orders
    lines = f", lines {rows[0].line}-{rows[-1].line}" if rows else ""
    summary = f"{chunk.kind} chunk {chunk.seq} of upload {chunk.upload}: {chunk.size} rows{lines}"
    return Payload("ingest chunk", summary, chunk.user)
