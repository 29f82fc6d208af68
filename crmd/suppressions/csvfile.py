"""A CSV file of addresses to suppress, read whole: the header names an ``email`` column
(and optionally ``reason``; other columns are ignored), and each row is an address.

Pure: bytes in, the entries and the rejected rows out. A row is rejected with its line
(the first line of the record, the header being line 1), the column, a code and a
message, as crmd's other imports report them; the file is refused whole (``CsvProblem``)
only when it cannot be read as such a file at all.
"""

from __future__ import annotations

import csv
import io

import msgspec

from crmd.emails import InvalidEmail, normalise_email
from crmd.errors import CrmdError
from crmd.suppressions.entries import MAX_REASON, Entry

MAX_ROWS = 10_000
MAX_CELL = 1000


class RejectedRow(msgspec.Struct, frozen=True):
    """One row left out: its first line in the file, the column, a code and a message."""

    line: int
    column: str
    code: str
    message: str


class CsvProblem(CrmdError):
    """The file as a whole is refused; nothing in it is suppressed."""

    def __init__(self, status: int, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message, code=code, details={"line": line} if line else None)
        self.status = status


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise CsvProblem(
            422, "bad_encoding", f"the file is not UTF-8 text (line {line})", line
        ) from None


def _columns(header: list[str]) -> tuple[int, int | None]:
    names = [cell.strip().lower() for cell in header]
    for name in ("email", "reason"):
        if names.count(name) > 1:
            raise CsvProblem(422, "bad_header", f"the header names {name!r} twice", 1)
    if "email" not in names:
        raise CsvProblem(
            422,
            "missing_column",
            "the first line must be a header naming an 'email' column (and optionally 'reason')",
            1,
        )
    return names.index("email"), names.index("reason") if "reason" in names else None


def parse_addresses(body: bytes, max_rows: int = MAX_ROWS) -> tuple[list[Entry], list[RejectedRow]]:
    """The file's addresses as entries from an ``import``, in file order, and the rows
    rejected. Blank lines are skipped; an address given twice is two entries (the list
    keeps it once)."""
    if not body.strip():
        raise CsvProblem(400, "empty_file", "the file is empty: send a header and some rows")
    # strict: a quote left open would otherwise swallow the rest of the file as one cell
    reader = csv.reader(io.StringIO(_text(body), newline=""), strict=True)
    entries: list[Entry] = []
    rejected: list[RejectedRow] = []
    line = 1
    try:
        email_at, reason_at = _columns(next(reader))
        rows = 0
        while True:
            line = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                break
            if not any(cell.strip() for cell in row):
                continue
            rows += 1
            if rows > max_rows:
                raise CsvProblem(
                    413, "too_many_rows", f"at most {max_rows:,} addresses a file: split it", line
                )
            found = _row(row, line, email_at, reason_at)
            if isinstance(found, RejectedRow):
                rejected.append(found)
            else:
                entries.append(found)
    except csv.Error as exc:
        raise CsvProblem(422, "bad_csv", f"line {line} is not valid CSV: {exc}", line) from None
    return entries, rejected


def _row(row: list[str], line: int, email_at: int, reason_at: int | None) -> Entry | RejectedRow:
    # Not stripped here: normalise_email trims spaces and refuses a line break or a tab.
    raw = row[email_at] if email_at < len(row) else ""
    if not raw.strip():
        return RejectedRow(line, "email", "missing", "email is empty")
    if len(raw) > MAX_CELL:
        return RejectedRow(line, "email", "too_long", f"email is longer than {MAX_CELL} characters")
    try:
        email = normalise_email(raw)
    except InvalidEmail as exc:
        given = raw.strip(" ")
        shown = given if given.isprintable() and len(given) <= 80 else "the value"
        return RejectedRow(line, "email", "invalid_email", f"email {shown!r} {exc}")
    reason = row[reason_at].strip() if reason_at is not None and reason_at < len(row) else ""
    if len(reason) > MAX_REASON:
        return RejectedRow(
            line, "reason", "too_long", f"reason is longer than {MAX_REASON} characters"
        )
    return Entry(email, reason, "import")
