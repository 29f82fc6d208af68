"""The values crmd stores and computes with, and their bounds.

A value outside these bounds is refused where it enters (an import row, a rule, a
request), with its field, so that nothing accepted can fail later: in BSON (64-bit
integers), in a JSON client (JavaScript reads whole numbers exactly only up to 2^53),
or in date arithmetic (Python's datetime ends at year 9999, and rules add and subtract
days).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

MAX_NUMBER = 2**53 - 1
"""The largest number crmd keeps: 9,007,199,254,740,991, read exactly by every client."""

EARLIEST = datetime(1000, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999000, tzinfo=UTC)
"""A day short of datetime's end, so that a whole day's upper bound still exists."""

MAX_AGE_DAYS = 365_000
"""The oldest age a rule may name (``1000y``): now minus it stays after EARLIEST."""

DATE_RANGE = f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d}"


def number_in_range(value: float) -> bool:
    return math.isfinite(value) and abs(value) <= MAX_NUMBER


def date_in_range(value: datetime) -> bool:
    """``value`` must be aware (it is compared in UTC)."""
    return EARLIEST <= value <= LATEST


def to_utc(value: datetime) -> datetime | None:
    """An aware copy in UTC (a naive value is taken as UTC), or None when the date lies
    outside the range crmd supports, conversion included (year 9999 plus an offset)."""
    try:
        at = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return at if date_in_range(at) else None
