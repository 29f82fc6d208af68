"""Signing and verifying receipt callbacks in the Standard Webhooks style.

The signed content is ``<webhook-id>.<webhook-timestamp>.<raw body>``; the signature is
HMAC-SHA256 with the vendor's secret, base64-encoded, sent as ``v1,<signature>`` in the
``webhook-signature`` header (several, space-separated, during a secret rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"


class SignatureError(Exception):
    """The callback is not signed by the vendor, or not now."""


def secret_bytes(secret: str) -> bytes:
    """A ``whsec_<base64>`` secret, or any other string used as it is."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except ValueError:
            raise SignatureError("the signing secret is not valid base64") from None
    return secret.encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> str:
    """The webhook id of a genuine, fresh callback; SignatureError otherwise. Compared
    in constant time; a timestamp more than five minutes off either way is refused."""
    lowered = {k.lower(): v for k, v in headers.items()}
    message_id = lowered.get("webhook-id", "")
    stamp = lowered.get("webhook-timestamp", "")
    offered = lowered.get("webhook-signature", "")
    if not message_id or not stamp or not offered:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is outside the 5-minute window")
    expected = sign(secret, message_id, timestamp, body).encode()
    candidates = [part.encode() for part in offered.split() if part.startswith("v1,")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in candidates):
        raise SignatureError("the signature does not match")
    return message_id
