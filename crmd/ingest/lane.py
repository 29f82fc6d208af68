"""The fast lane for customer rows: a run of rows checked a column at a time with string
methods that loop in C, then typed by msgspec in one call. A run the lane cannot vouch
for whole is halved until the rows it can are found; the rest (``1,234``, a date without
a zone, a non-ASCII address, a calendar date that does not exist) take the precise path
in ``crmd.ingest.rows``, which also says what is wrong with them.

The lane admits only values the precise path would turn into the same record, so a row
gives the same result whichever way it went; ``tests/ingest/test_lane.py`` holds the two
to that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import repeat

import msgspec

from crmd.emails import plain_addresses
from crmd.ingest.headers import Columns
from crmd.ingest.rows import MAX_TEXT, CustomerRow

SMALLEST = 8
"""Below this many rows, a run the lane refused goes the precise way row by row."""

_DIGITS = frozenset("0123456789")
_DECIMAL = frozenset("0123456789.")
_LONGEST_NUMBER = 15
"""Digits (and a point) the lane types: below 10^15, well inside MAX_NUMBER."""
# A day, or RFC 3339 to the second or the millisecond, in UTC or with no zone (which
# crmd reads as UTC): completed to the forms msgspec and datetime.fromisoformat read
# alike. Years from 1000 to 9998 (9999 ends a day early).
_DATE_CHARS = frozenset("0123456789-:.TZ")
_DATE_ENDINGS = {10: "T00:00:00Z", 19: "Z", 20: "", 23: "Z", 24: ""}

Precise = Callable[[list[str], int], CustomerRow | None]
"""The precise path: the row's record, or None once it has reported the row rejected."""


class CustomerLane:
    def __init__(self, columns: Columns) -> None:
        self.open = True
        """Closed once most of a run needed the precise path: a file whose every row has
        a value the lane does not read (``1,234``) is then not halved run after run."""
        self.width = len(columns.headers)
        self.fields = columns.fields
        self.attrs = tuple(columns.attrs.items())

    def rows(self, run: list[list[str]], lines: list[int], precise: Precise) -> list[CustomerRow]:
        """The run's records in line order. Every row must have ``width`` values."""
        asked = 0

        def counted(values: list[str], line: int) -> CustomerRow | None:
            nonlocal asked
            asked += 1
            return precise(values, line)

        rows = self._rows(run, lines, counted)
        if asked * 2 > len(run):
            self.open = False
        return rows

    def _rows(self, run: list[list[str]], lines: list[int], precise: Precise) -> list[CustomerRow]:
        if not run:
            return []
        typed = self._typed(run, lines)
        if typed is not None:
            return typed
        if len(run) < SMALLEST:
            return [
                row
                for values, line in zip(run, lines, strict=True)
                if (row := precise(values, line)) is not None
            ]
        half = len(run) // 2
        return self._rows(run[:half], lines[:half], precise) + self._rows(
            run[half:], lines[half:], precise
        )

    def _typed(self, run: list[list[str]], lines: list[int]) -> list[CustomerRow] | None:
        """Every row of the run as a record, or None when one of them needs a closer look."""
        columns = list(zip(*run, strict=True))

        def column(field: str) -> Sequence[str] | None:
            index = self.fields.get(field)
            return None if index is None else columns[index]

        name = _text(column("name"), required=True)
        email = _email(column("email"))
        spend = _number(column("spend"), _DECIMAL)
        visits = _number(column("visits"), _DIGITS)
        active = _date(column("lastActive"))
        texts = [_text(column(f)) for f in ("customer_external_id", "phone", "location")]
        if name is None or email is None or spend is None or visits is None or active is None:
            return None
        external, phone, location = texts
        if external is None or phone is None or location is None:
            return None
        records = zip(
            lines,
            name,
            email,
            external,
            phone,
            location,
            spend,
            visits,
            active,
            self._attrs(columns),
            strict=False,  # repeat() stands in for a column the file lacks
        )
        try:
            return msgspec.convert(list(records), list[CustomerRow], strict=False)
        except msgspec.ValidationError:
            return None  # a number with a leading zero, a 30 February

    def _attrs(self, columns: list[tuple[str, ...]]) -> Iterable[dict[str, str]]:
        """Custom attributes as the precise path keeps them: trimmed, empty ones left out."""
        if not self.attrs:
            return repeat({})  # msgspec copies each
        names = [name for name, _ in self.attrs]
        values = [list(map(str.strip, columns[index])) for _, index in self.attrs]
        if len(names) == 1:
            only = names[0]
            return [{only: v} if v else {} for v in values[0]]
        rows = zip(*values, strict=True)
        return [{k: v for k, v in zip(names, row, strict=True) if v} for row in rows]


# Each check takes a column (None: the file lacks it) and answers its values ready for
# msgspec (a column the file lacks as its default, repeated), or None when some value
# needs the precise path.


def _text(column: Sequence[str] | None, required: bool = False) -> Iterable[str] | None:
    if column is None:
        return None if required else repeat("")
    values = list(map(str.strip, column))
    if max(map(len, values)) > MAX_TEXT or (required and not all(values)):
        return None
    return values


def _email(column: Sequence[str] | None) -> list[str] | None:
    if column is None:
        return None
    values = [value.strip(" ").lower() for value in column]  # as normalise_email trims
    return values if plain_addresses(values) else None


def _number(column: Sequence[str] | None, chars: frozenset[str]) -> Iterable[str] | None:
    """Plain digits: msgspec refuses what float() and the precise path read otherwise
    (``.5``, ``5.``, ``007``), and those rows go the precise way."""
    if column is None:
        return repeat("0")
    values = list(map(str.strip, column))
    if not chars.issuperset("".join(values)) or max(map(len, values)) > _LONGEST_NUMBER:
        return None
    return [v or "0" for v in values]


def _date(column: Sequence[str] | None) -> Iterable[str | None] | None:
    if column is None:
        return repeat(None)
    values = list(map(str.strip, column))
    given = [v for v in values if v]
    if not given:
        return [None] * len(values)
    if not _DATE_ENDINGS.keys() >= set(map(len, given)) or not _DATE_CHARS.issuperset(
        "".join(given)
    ):
        return None
    if min(given) < "1000" or max(given) >= "9999":
        return None
    dates = [v + _DATE_ENDINGS[len(v)] if v else None for v in values]
    if not all(map(str.endswith, filter(None, dates), repeat("Z"))):
        return None
    return dates
