"""What every provider's adapter needs: crmd's message id as the mail carried it, the
time of an event, a stable event id, a header by any case, and a freshness check. Pure:
no socket, no clock but the one passed in."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

MESSAGE_ID_HEADER = "X-Crmd-Message-Id"
"""The header the smtp vendor puts on every message: crmd's id for it, as it is."""
METADATA_KEY = "crmd_message_id"
"""The name of the custom argument, variable or metadata field carrying crmd's id."""
_ANGLED = re.compile(r"<?(?P<left>[^<>@\s]+)@[^<>@\s]+>?")
_ESCAPED = re.compile(r"(?:=[0-9A-F]{2})+")
MAX_ID = 200

ReportsFor = Annotated[list[Annotated[str, msgspec.Meta(min_length=1)]], msgspec.Meta(min_length=1)]


def reports_for_default() -> list[str]:
    return ["smtp"]


def from_message_id_header(value: object) -> str:
    """crmd's message id from a ``Message-ID`` (``<id@domain>``, angle brackets or not),
    with the ``=XX`` escapes the smtp vendor writes for characters a Message-ID cannot
    hold undone; "" for anything else."""
    if not isinstance(value, str):
        return ""
    match = _ANGLED.fullmatch(value.strip())
    if match is None:
        return ""
    left = _ESCAPED.sub(
        lambda m: bytes.fromhex(m.group().replace("=", "")).decode("latin-1"), match.group("left")
    )
    return plain_id(left)


def plain_id(value: object) -> str:
    """``value`` when it can be a crmd message id (printable, no space, at most 200
    characters), else ""."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        return ""
    return value if value.isprintable() and not any(c.isspace() for c in value) else ""


def header(headers: Mapping[str, str], name: str) -> str:
    """A request header whatever its case ("" when absent): aiohttp's are looked up in
    any case already, a plain dict (a test) is not."""
    found = headers.get(name)
    if found is not None:
        return found
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), "")


def event_id(provider: str, *parts: object) -> str:
    """A stable id for a provider's event that has none of its own: a hash of what
    makes it that event (a redelivered webhook gives the same id)."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()
    return f"{provider}:{digest[:40]}"


def short_id(provider: str, value: object) -> str:
    """The provider's own event id, prefixed; hashed when it is too long to keep."""
    text = str(value)
    return (
        f"{provider}:{text}"
        if 0 < len(text) <= 150 and text.isprintable()
        else event_id(provider, text)
    )


def at_iso(value: object) -> datetime:
    """An ISO 8601 time as the providers write it (``2026-05-01T09:30:00.123Z``), in
    UTC; ValueError when it is none."""
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}"[:100])
    parsed = datetime.fromisoformat(value.strip())
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def at_unix(value: object) -> datetime:
    """Seconds since 1970 (an int, a float or their text), in UTC; ValueError when not."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a timestamp: {value!r}"[:100])
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"not a timestamp: {value!r}"[:100]) from exc


def check_fresh(stamp: str, window: float, now: float) -> float:
    """The signed timestamp (seconds since 1970) as a number; ValueError when it is
    missing, not a number, or further than ``window`` seconds from ``now``."""
    try:
        seconds = float(stamp)
    except ValueError:
        raise ValueError("no usable timestamp") from None
    if not abs(now - seconds) <= window:
        raise ValueError(f"stale: the timestamp is over {window:g} s from now")
    return seconds


def decode_json(body: bytes) -> Any:
    """The body as JSON; ValueError naming what is wrong."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None


def field(parent: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``parent[key]`` when it is a JSON object, else an empty one."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def objects(value: object) -> list[dict[str, Any]]:
    """The JSON objects in ``value`` when it is a list, else none."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def text(value: object, limit: int = 300) -> str:
    """A value from a payload as a reason's words: text only, cut to ``limit``."""
    return value[:limit] if isinstance(value, str) else ""
