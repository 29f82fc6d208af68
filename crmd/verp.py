"""VERP: an envelope sender that names its message, ``<local>+<token>@<bounce domain>``.

A bounce goes back to the envelope sender (MAIL FROM), so when every message has a
sender of its own, the address a bounce arrives at says which message bounced, whatever
the bounce's body looks like. The token is the message's send key
(``crmd.messages.send_key``: its log id, and ``:rN`` after a retry) and an HMAC of it
under a key derived from crmd's secret, so that a forged bounce cannot name a message.

A local part may be at most 64 characters (RFC 5321), and mail systems may change its
case, so the token is lower-case base32: the log id's 20 bytes (its campaign's 12 and
its 8-byte customer hash; a legacy id's 12) in 32 characters (20), then ``r`` and the
round after a retry, then 10 characters of HMAC (50 bits). A round-0 token is 42
characters. Pure: no socket, no database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from crmd.messages import parse_send_key

MAX_LOCAL_PART = 64
MAC_CHARS = 10
TOKEN_CHARS = 32 + MAC_CHARS
"""A round-0 token's length (a retry's adds ``r`` and the round's digits)."""
SEPARATOR = "+"
_LOG_ID = re.compile(r"(?P<campaign>[0-9a-f]{24})(?:\.(?P<customer>[0-9a-f]{16}))?")
_TOKEN = re.compile(
    r"(?P<id>[a-z2-7]{32}|[a-z2-7]{20})(?:r(?P<round>[1-9][0-9]{0,5}))?(?P<mac>[a-z2-7]{10})"
)
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
"""A local part written without quotes: the only kind a token can be appended to."""


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _unb32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


class ReturnPaths:
    """Makes and reads the envelope senders of one crmd (one key, one sender)."""

    def __init__(self, key: bytes, local: str, domain: str, vendors: tuple[str, ...] = ("smtp",)):
        self.key = key
        self.local = local
        self.domain = domain.lower()
        self.vendors = vendors
        """The vendors whose messages are sent with these senders: those whose bounces
        come back to the listener."""

    @classmethod
    def from_secret(cls, secret: str, local: str, domain: str) -> ReturnPaths:
        """The key is derived from crmd's secret for this one use."""
        key = hmac.new(secret.encode(), b"crmd bounce addresses", hashlib.sha256).digest()
        return cls(key, local, domain)

    def covers(self, vendor: str | None) -> bool:
        return vendor in self.vendors

    def _mac(self, body: str) -> str:
        return _b32(hmac.new(self.key, body.encode(), hashlib.sha256).digest())[:MAC_CHARS]

    def token(self, send_key: str) -> str:
        """The token for a send key; "" for a key that is no log id of crmd's (a test
        send's)."""
        log_id, round_ = parse_send_key(send_key)
        found = _LOG_ID.fullmatch(log_id)
        if found is None:
            return ""
        raw = bytes.fromhex(found["campaign"] + (found["customer"] or ""))
        body = _b32(raw) + (f"r{round_}" if round_ else "")
        return body + self._mac(body)

    def address(self, send_key: str) -> str:
        """The envelope sender for the message ``send_key``; "" (send with the vendor's
        own) when there is no token for it or the local part would be over 64."""
        token = self.token(send_key)
        local = f"{self.local}{SEPARATOR}{token}"
        if not token or len(local) > MAX_LOCAL_PART:
            return ""
        return f"{local}@{self.domain}"

    def is_ours(self, address: str) -> bool:
        """Whether ``address`` is on the bounce domain (any local part)."""
        return address.rpartition("@")[2].lower() == self.domain

    def read(self, address: str) -> str | None:
        """The send key an envelope sender names; None when it is not one of ours, not
        a token, or its HMAC does not match (any changed character)."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or domain.lower() != self.domain or SEPARATOR not in local:
            return None
        token = local.rpartition(SEPARATOR)[2].lower()
        found = _TOKEN.fullmatch(token)
        if found is None:
            return None
        body = token[:-MAC_CHARS]
        if not hmac.compare_digest(found["mac"], self._mac(body)):
            return None
        try:
            hexed = _unb32(found["id"]).hex()
        except (binascii.Error, ValueError):
            return None
        log_id = hexed if len(hexed) == 24 else f"{hexed[:24]}.{hexed[24:]}"
        return f"{log_id}:r{found['round']}" if found["round"] else log_id


def fits(local: str) -> bool:
    """Whether a round-0 token fits after ``local`` within a local part's 64."""
    return len(local) + len(SEPARATOR) + TOKEN_CHARS <= MAX_LOCAL_PART
