"""The receipts stream's entries: the events of one verified callback."""

from __future__ import annotations

from collections import Counter

import msgspec

from crmd.plugins.vendor import ReceiptEvent
from crmd.streams.describe import Payload

FIELD = b"receipts"


class ReceiptBatch(msgspec.Struct, array_like=True):
    vendor: str
    """Who reported the events: a vendor, or a source of reports on other vendors' mail."""
    events: list[ReceiptEvent]
    reports_for: list[str] = []
    """The vendors whose messages these events may name besides ``vendor``'s own: a
    provider's event webhook or the bounces listener reports on mail the smtp vendor
    sent."""


encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(ReceiptBatch).decode


def describe(raw: bytes) -> Payload:
    """A batch of receipts in words, for a dead letter (``crmd.streams.describe``). It
    names no tenant: see ``Payload.user``."""
    received = decode(raw)
    statuses = Counter(event.status for event in received.events)
    counts = ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
    summary = f"{len(received.events)} receipt events from vendor {received.vendor}"
    return Payload("receipts", f"{summary} ({counts})" if counts else summary)
