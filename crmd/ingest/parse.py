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

from crmd.config import IngestConfig
from crmd.ingest.errors import FileProblem, RowError
from crmd.ingest.headers import match_columns
from crmd.ingest.lane import CustomerLane
from crmd.ingest.rows import CustomerRow, OrderRow, validate

BOM = b"\xef\xbb\xbf"


class Limits(msgspec.Struct, frozen=True):
    max_bytes: int = 100 * 1024 * 1024
    max_rows: int = 1_000_000
    max_columns: int = 100
    max_field_bytes: int = 64 * 1024
    chunk_rows: int = 500
    errors_kept: int = 1000

    @classmethod
    def of(cls, ingest: IngestConfig) -> Limits:
        """The limits ``[ingest]`` sets."""
        return cls(
            max_bytes=ingest.max_file_bytes,
            max_rows=ingest.max_rows,
            max_columns=ingest.max_columns,
            max_field_bytes=ingest.max_field_bytes,
            chunk_rows=ingest.chunk_rows,
        )


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


def decoded_blocks(
    chunks: Iterable[bytes], max_bytes: int, max_line_bytes: int | None = None
) -> Iterator[str]:
    """Runs of whole UTF-8 lines, BOM removed. A
    newline byte never occurs inside a multi-byte UTF-8 sequence, so cutting the bytes
    after one first is safe, and an invalid byte is reported with its line."""
    pending = b""
    lines = 0
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
                    f"line {lines + 1} is longer than {max_line_bytes} bytes",
                    line=lines + 1,
                )
            continue
        cut = pending.rfind(b"\n") + 1
        whole, pending = pending[:cut], pending[cut:]
        yield _decode(whole, lines)
        lines += whole.count(b"\n")
    if not bom_checked:
        pending = pending.removeprefix(BOM)
    if pending:
        yield _decode(pending, lines)


# What makes a line other than one record: a quote (a field may hold newlines), or a
# line break that str.splitlines sees and csv does not, or the reverse (a lone \r).
_NOT_PLAIN = ('"', "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _plain(text: str) -> bool:
    if any(c in text for c in _NOT_PLAIN):
        return False
    return "\r" not in text or text.count("\r") == text.count("\r\n")


class Records:
    """The lines csv reads, with a bound on each record. In a block with no quote each
    line is a record (and the line is bounded); elsewhere a record's lines are counted
    until the reader calls ``record_done``, so that a record spread over many lines (a
    quoted field may hold newlines) cannot grow past ``longest`` bytes in memory."""

    def __init__(self, blocks: Iterator[str], longest: int) -> None:
        self.blocks = blocks
        self.longest = longest
        self.size = 0
        self.first_line = 1

    def __iter__(self) -> Iterator[str]:
        for text in self.blocks:
            if _plain(text):
                yield from text.splitlines(keepends=True)
                continue
            lines = [piece + "\n" for piece in text.split("\n")]
            lines[-1] = lines[-1][:-1]  # after the last newline: empty, or the file's end
            for line in lines:
                self.size += len(line)
                if self.size > self.longest:
                    raise FileProblem(
                        422,
                        "record_too_long",
                        f"the record starting on line {self.first_line} is longer than "
                        f"{self.longest} bytes",
                        line=self.first_line,
                    )
                if line:
                    yield line

    def record_done(self, lines_read: int) -> None:
        self.size = 0
        self.first_line = lines_read + 1


def _decode(raw: bytes, lines_before: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = lines_before + raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FileProblem(
            422,
            "invalid_utf8",
            f"line {line} is not valid UTF-8 (byte {column})",
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
    records = Records(decoded_blocks(chunks, limits.max_bytes, longest), longest)
    reader = csv.reader(iter(records), strict=True)
    summary = Summary()
    try:
        header = next(reader, None)
        records.record_done(reader.line_num)
        while header is not None and not any(h.strip() for h in header):
            header = next(reader, None)  # blank lines before the header
            records.record_done(reader.line_num)
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
        lane = CustomerLane(columns) if kind == "customers" else None
        batch: list[CustomerRow | OrderRow] = []

        def precise(values: list[str], line: int) -> CustomerRow | OrderRow | None:
            result = validate(values, line, kind, columns)
            if not isinstance(result, RowError):
                return result
            summary.rejected += 1
            if len(summary.errors) < limits.errors_kept:
                summary.errors.append(result)
            sink.reject(result, values)
            return None

        run: list[list[str]] = []  # rows for the lane, not yet typed
        run_lines: list[int] = []

        def drain() -> None:
            """The lane's rows into the batch, before any later row: a chunk keeps the
            file's order (inside a chunk, the later row for a key wins)."""
            nonlocal run, run_lines
            if lane is not None and run:
                batch.extend(lane.rows(run, run_lines, precise))  # type: ignore[arg-type]
                run, run_lines = [], []

        def ship() -> None:
            nonlocal batch
            drain()
            if batch:
                summary.valid += len(batch)
                sink.chunk(batch)  # type: ignore[arg-type]
                summary.chunks += 1
                batch = []

        end = reader.line_num
        for values in reader:
            records.record_done(reader.line_num)
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
            if lane is not None:
                if len(values) == lane.width and lane.open:
                    run.append(values)
                    run_lines.append(start)
                    if len(batch) + len(run) >= limits.chunk_rows:
                        ship()
                    continue
                drain()
            row = precise(values, start)
            if row is not None:
                batch.append(row)
                if len(batch) >= limits.chunk_rows:
                    ship()
        ship()
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
