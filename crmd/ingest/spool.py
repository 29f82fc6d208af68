"""Parsed output held on disk until the whole file has passed: chunks of valid rows and
every rejected row, in unlinked temporary files (gone with the process, whatever
happens)."""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from typing import IO

import msgspec

from crmd.ingest import chunks
from crmd.ingest.errors import RowError
from crmd.ingest.rows import CustomerRow, OrderRow

_LENGTH = struct.Struct(">I")


class Rejected(msgspec.Struct, array_like=True):
    error: RowError
    values: list[str]


_encode_rejected = msgspec.msgpack.Encoder().encode
_decode_rejected = msgspec.msgpack.Decoder(Rejected).decode


class Spool:
    """The parse sink: chunks become finished stream payloads as they are parsed."""

    def __init__(
        self, upload: str, user: str, kind: str, accepted_ms: int, directory: str | None = None
    ) -> None:
        self.upload, self.user, self.kind, self.accepted_ms = upload, user, kind, accepted_ms
        # Closed by close(); unlinked at once, so nothing is left even after a crash.
        self._chunks: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self._rejects: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self.seq = 0

    def chunk(self, rows: list[CustomerRow] | list[OrderRow]) -> None:
        chunk = chunks.IngestChunk(self.upload, self.user, self.kind, self.seq, self.accepted_ms)
        if self.kind == "customers":
            chunk.customers = rows  # type: ignore[assignment]
        else:
            chunk.orders = rows  # type: ignore[assignment]
        self.seq += 1
        _write(self._chunks, chunks.encode(chunk))

    def reject(self, error: RowError, values: list[str]) -> None:
        _write(self._rejects, _encode_rejected(Rejected(error, values)))

    def payloads(self) -> Iterator[bytes]:
        yield from _read(self._chunks)

    def rejected(self) -> Iterator[Rejected]:
        for raw in _read(self._rejects):
            yield _decode_rejected(raw)

    def close(self) -> None:
        self._chunks.close()
        self._rejects.close()


def _write(handle: IO[bytes], payload: bytes) -> None:
    handle.write(_LENGTH.pack(len(payload)))
    handle.write(payload)


def _read(handle: IO[bytes]) -> Iterator[bytes]:
    handle.flush()
    handle.seek(0)
    while header := handle.read(_LENGTH.size):
        (length,) = _LENGTH.unpack(header)
        yield handle.read(length)
