"""The receipts stream's entries: the events of one verified callback."""

from __future__ import annotations

import msgspec

from crmd.plugins.vendor import ReceiptEvent

FIELD = b"receipts"


class ReceiptBatch(msgspec.Struct, array_like=True):
    vendor: str
    events: list[ReceiptEvent]


encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(ReceiptBatch).decode
