"""Signing a callback as a vendor does, in the Standard Webhooks style crmd verifies."""

from __future__ import annotations

import time
import uuid

from crmd.plugins.signature import signed_headers


def sign_receipt(
    body: bytes, secret: str, *, webhook_id: str | None = None, at: float | None = None
) -> dict[str, str]:
    """The headers of a signed JSON callback: ``webhook-id`` (random unless given),
    ``webhook-timestamp`` (now unless ``at``), ``webhook-signature`` with ``secret``
    (``whsec_<base64>`` or any string) and ``Content-Type``. Pass ``at`` ten minutes
    back to test that a stale callback is refused."""
    stamp = int(time.time() if at is None else at)
    headers = signed_headers(secret, webhook_id or f"msg_{uuid.uuid4().hex}", stamp, body)
    return {**headers, "Content-Type": "application/json"}
