"""How the console writes values: money in the configured currency, a moment or a day
in one format (``2024-05-02 14:30 UTC``, or ``2024-05-02`` for a day with no time), a
custom attribute's name as its column's, and a message cut short for a table."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from crmd.store.limits import to_utc

SYMBOLS = {"INR": "₹", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "¥"}
"""Currencies written with their sign; any other is written with its code."""
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?")
_SLASHED = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_LINK = re.compile(r"https?://\S+")


def money(value: Any, currency: str) -> str:
    """``₹1,234.50``; ``CHF 1,234.50`` for a currency with no sign here; ``-`` for none."""
    if value is None or value == "":
        return "-"
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return str(value)
    sign = "-" if amount < 0 else ""
    symbol = SYMBOLS.get(currency)
    figure = f"{abs(amount):,.2f}"
    return f"{sign}{symbol}{figure}" if symbol else f"{sign}{currency} {figure}"


def when(value: Any) -> str:
    """A moment as ``2024-05-02 14:30 UTC``; a day (a date, or midnight exactly, which is
    how a file's date without a time is stored) as ``2024-05-02``; text that is neither,
    as it is."""
    if isinstance(value, str):
        text = value.strip()
        if not (_DAY.fullmatch(text) or _MOMENT.fullmatch(text)):
            return text
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"{value:%Y-%m-%d}"
    if not isinstance(value, datetime):
        return ""
    moment = to_utc(value)
    if moment is None:
        return ""
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return f"{moment:%Y-%m-%d}"
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def attribute_value(value: Any) -> str:
    """A custom attribute as the file had it, but a date in the console's one format
    (``2024-05-02``, whether the file said ``2024-05-02T00:00:00`` or ``02/05/2024``;
    day first, as most of the world writes it)."""
    if isinstance(value, date):  # stored as a date (the file's looked like one)
        return when(value)
    text = str(value)
    slashed = _SLASHED.fullmatch(text.strip())
    if slashed:
        day, month, year = (int(part) for part in slashed.groups())
        try:
            return f"{date(year, month, day):%Y-%m-%d}"
        except ValueError:
            return text
    return when(text) if isinstance(value, str) else text


def attribute_label(key: str) -> str:
    """``loyalty_tier`` (a column ``Loyalty Tier`` as crmd keeps it) as ``Loyalty tier``."""
    words = key.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else key


def excerpt(text: Any, limit: int = 60) -> str:
    """A message's first words for a table: links out (the unsubscribe line's is 150
    characters of nothing to read), one line, at most ``limit`` characters."""
    flat = " ".join(_LINK.sub("", str(text or "")).split())
    flat = re.sub(r"\s*Unsubscribe:\s*$", "", flat)
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rstrip() + "…"
