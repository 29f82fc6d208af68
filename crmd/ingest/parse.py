"""From the bytes of an upload to validated chunks of rows. Synchronous and free of I/O:
the HTTP shell feeds it byte chunks from a worker thread and gives it a sink.

The whole file is parsed before anything is queued, so a file refused half way (bad
UTF-8, a quoting error, too many rows) leaves nothing behind.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

import msgspec

from crmd.ingest.errors import FileProblem, RowError
from crmd.ingest.headers import match_columns
from crmd.ingest.rows import CustomerRow, OrderRow, validate

BOM = b"\xef\xbb\xbf"


class Limits(msgspec.Struct, frozen=True):
    max_bytes: int = 100 * 1024 * 1024
    max_rows: int = 1_000_000
    max_columns: int = 100
    max_field_bytes: int = 64 * 1024
    chunk_rows: int = 500
    errors_kept: int = 1000


class Sink(Protocol):
    """Where parsing puts its output: chunks of valid rows and every rejected row."""

    def chunk(self, rows: list[CustomerRow] | list[OrderRow]) -> None: ...

    def reject(self, error: RowError, values: list[str]) -> None: ...


class Summary(msgspec.Struct):
    received: int = 0
    valid: int = 0
    rejected: int = 0
    chunks: int = 0
    errors: list[RowError] = msgspec.field(default_factory=list)
    """The first ``errors_kept`` row errors; the sink has all of them."""


def decoded_lines(
    chunks: Iterable[bytes], max_bytes: int, max_line_bytes: int | None = None
) -> Iterator[str]:
    """UTF-8 lines with their endings, BOM removed. A newline byte never occurs inside a
    multi-byte UTF-8 sequence, so splitting the bytes on it first is safe, and an
    invalid byte is reported with its line."""
    pending = b""
    line = 0
    total = 0
    bom_checked = False
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise FileProblem(413, "file_too_large", f"the file is larger than {max_bytes} bytes")
        pending += chunk
        if not bom_checked and len(pending) >= len(BOM):
            pending, bom_checked = pending.removeprefix(BOM), True
        if b"\n" not in chunk:
            if max_line_bytes is not None and len(pending) > max_line_bytes:
                raise FileProblem(
                    422,
                    "line_too_long",
                    f"line {line + 1} is longer than {max_line_bytes} bytes",
                    line=line + 1,
                )
            continue
        parts = pending.split(b"\n")
        pending = parts.pop()
        for raw in parts:
            line += 1
            yield _decode(raw + b"\n", line)
    if not bom_checked:
        pending = pending.removeprefix(BOM)
    if pending:
        yield _decode(pending, line + 1)


class Records:
    """The lines csv reads, with a bound on each record: a record's lines are counted
    until the reader asks ``record_done``, so that a record spread over many lines (a
    quoted field may hold newlines) cannot grow past ``longest`` bytes in memory."""

    def __init__(self, lines: Iterator[str], longest: int) -> None:
        self.lines = lines
        self.longest = longest
        self.size = 0
        self.first_line = 1
        self.line = 0

    def __iter__(self) -> Records:
        return self

    def __next__(self) -> str:
        text = next(self.lines)
        self.line += 1
        self.size += len(text)
        if self.size > self.longest:
            raise FileProblem(
                422,
                "record_too_long",
                f"the record starting on line {self.first_line} is longer than "
                f"{self.longest} bytes",
                line=self.first_line,
            )
        return text

    def record_done(self) -> None:
        self.size = 0
        self.first_line = self.line + 1


def _decode(raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(
            422,
            "invalid_utf8",
            f"line {line} is not valid UTF-8 (byte {exc.start + 1})",
            line=line,
        ) from None


def parse_upload(
    chunks: Iterable[bytes],
    kind: str,
    mapping: Mapping[str, str],
    limits: Limits,
    sink: Sink,
) -> Summary:
    """Parse and validate the whole upload into ``sink``; raise FileProblem to refuse it."""
    # csv's field limit is process-wide; crmd sets the same configured value every time.
    csv.field_size_limit(limits.max_field_bytes)
    # No record can be longer than every field at its limit: a longer line is refused
    # before it fills memory.
    longest = limits.max_columns * (limits.max_field_bytes + 3)
    records = Records(decoded_lines(chunks, limits.max_bytes, longest), longest)
    reader = csv.reader(records, strict=True)
    summary = Summary()
    try:
        header = next(reader, None)
        records.record_done()
        while header is not None and not any(h.strip() for h in header):
            header = next(reader, None)  # blank lines before the header
            records.record_done()
        if header is None:
            raise FileProblem(422, "empty_file", "the file has no header row")
        if len(header) > limits.max_columns:
            raise FileProblem(
                422,
                "too_many_columns",
                f"{len(header)} columns; at most {limits.max_columns}",
                line=1,
            )
        columns = match_columns(header, kind, mapping)
        batch: list[CustomerRow | OrderRow] = []
        end = reader.line_num
        for values in reader:
            records.record_done()
            start, end = end + 1, reader.line_num
            if not values or (len(values) == 1 and not values[0].strip()):
                continue  # blank line
            summary.received += 1
            if len(values) > limits.max_columns:
                # Not a row with a stray comma but a broken or hostile file: refused as a
                # whole, before a row of millions of fields is stored or quoted anywhere.
                raise FileProblem(
                    422,
                    "too_many_fields",
                    f"line {start} has {len(values)} fields; a row may have at most "
                    f"{limits.max_columns}",
                    line=start,
                )
            if summary.received > limits.max_rows:
                raise FileProblem(
                    413, "too_many_rows", f"more than {limits.max_rows} rows", line=start
                )
            result = validate(values, start, kind, columns)
            if isinstance(result, RowError):
                summary.rejected += 1
                if len(summary.errors) < limits.errors_kept:
                    summary.errors.append(result)
                sink.reject(result, values)
                continue
            summary.valid += 1
            batch.append(result)
            if len(batch) >= limits.chunk_rows:
                sink.chunk(batch)  # type: ignore[arg-type]
                summary.chunks += 1
                batch = []
        if batch:
            sink.chunk(batch)  # type: ignore[arg-type]
            summary.chunks += 1
    except csv.Error as exc:
        line = reader.line_num
        message = str(exc)
        if "field larger than field limit" in message:
            raise FileProblem(
                422,
                "field_too_large",
                f"a field on line {line} is larger than {limits.max_field_bytes} bytes",
                line=line,
            ) from None
        raise FileProblem(422, "bad_csv", f"line {line}: {message}", line=line) from None
    return summary
