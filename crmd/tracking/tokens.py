"""Signed click and open links: ``<public_url>/c/<token>`` and ``<public_url>/o/<token>``.

A token names a message (its log's id) and, for a click, the link's index among the
campaign's links, with the day it was made, under an HMAC-SHA256 (cut to 80 bits) of
what it names and of its kind, with a key derived from crmd's secret for this use
alone: a click token cannot be read as an open, a changed index breaks the signature,
and nobody can make a token crmd did not. A token older than ``[campaigns]
tracking_days`` is refused, like a forged one. The address a click goes to is not in
the token at all: it is the campaign's own (``crmd.tracking.links``).

Pure: ``read`` takes a token and returns what it names, or None.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from datetime import UTC, date, datetime
from typing import Literal, NamedTuple

CLICK_PATH = "/c/"
OPEN_PATH = "/o/"
Kind = Literal["c", "o"]
MAC_BYTES = 10
EPOCH = date(2020, 1, 1)
_LOG = re.compile(r"(?P<campaign>[0-9a-f]{24})(?:\.(?P<hash>[0-9a-f]{16}))?")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,80}")
_TAIL = struct.Struct(">HH")


class Tracked(NamedTuple):
    """What a token names."""

    log_id: str
    link: int
    """The link's index (0 for an open)."""
    day: int
    """The day it was made, counted from 2020-01-01."""


def today(now: datetime | None = None) -> int:
    return ((now or datetime.now(UTC)).date() - EPOCH).days


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TrackingLinks:
    """Makes and reads the click and open links of one crmd."""

    def __init__(self, key: bytes, base_url: str, days: int = 365) -> None:
        self.key = key
        self.base_url = base_url.rstrip("/")
        self.days = days

    @classmethod
    def from_secret(cls, secret: str, base_url: str, days: int = 365) -> TrackingLinks:
        key = hmac.new(secret.encode(), b"crmd tracking links", hashlib.sha256).digest()
        return cls(key, base_url, days)

    def _mac(self, kind: Kind, payload: bytes) -> bytes:
        return hmac.new(self.key, kind.encode() + payload, hashlib.sha256).digest()[:MAC_BYTES]

    def token(self, kind: Kind, log_id: str, index: int = 0, day: int | None = None) -> str:
        """ValueError for a log id crmd does not issue (a test send's, say)."""
        match = _LOG.fullmatch(log_id)
        if match is None or not 0 <= index < 2**16:
            raise ValueError(f"no tracking for message {log_id!r}")
        named = match.group("hash") is not None
        ident = bytes.fromhex(match.group("campaign") + (match.group("hash") or ""))
        made = today() if day is None else day
        payload = bytes([named]) + ident + _TAIL.pack(index, made)
        return _text(payload + self._mac(kind, payload))

    def click_url(self, log_id: str, index: int) -> str:
        return f"{self.base_url}{CLICK_PATH}{self.token('c', log_id, index)}"

    def open_url(self, log_id: str) -> str:
        return f"{self.base_url}{OPEN_PATH}{self.token('o', log_id)}"

    def read(self, kind: Kind, token: str, now: int | None = None) -> Tracked | None:
        """What the token names; None when it is cut short, changed, made by anyone else,
        of the other kind, or older than ``days``."""
        if not _TOKEN.fullmatch(token):
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            return None
        if _text(raw) != token or len(raw) < 1 + MAC_BYTES:
            return None
        payload, given = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        if not hmac.compare_digest(given, self._mac(kind, payload)):
            return None
        named = payload[0] == 1
        if payload[0] not in (0, 1) or len(payload) != 1 + (20 if named else 12) + _TAIL.size:
            return None
        ident = payload[1 : -_TAIL.size].hex()
        index, made = _TAIL.unpack(payload[-_TAIL.size :])
        age = (today() if now is None else now) - made
        if not 0 <= age + 1 <= self.days + 1:  # a day ahead: clocks of two processes
            return None
        log_id = f"{ident[:24]}.{ident[24:]}" if named else ident
        return Tracked(log_id, index, made)
