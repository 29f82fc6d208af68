"""Mailgun's webhooks (the JSON ones: ``signature`` and ``event-data``), posted to
``/api/v1/deliveryReceipt/mailgun``.

Settings, in ``[plugins.mailgun]`` (off until ``signing_key`` is set)::

    signing_key = "$env:MAILGUN_WEBHOOK_SIGNING_KEY"   # "HTTP webhook signing key"
    max_age = 900                                      # seconds a signature stays good
    reports_for = ["smtp"]

Mailgun signs ``timestamp + token`` (HMAC-SHA256, hex, with the webhook signing key).
That signature does not cover ``event-data``, so crmd takes each token once: the same
token with another body, within ``max_age``, is a replay and refused (the same body
again is Mailgun delivering it again, a duplicate). delivered is DELIVERED, failed with
severity permanent BOUNCED, temporary SOFT_BOUNCED, complained COMPLAINED, opened
OPENED, clicked CLICKED. The message is found by the ``crmd_message_id`` variable the
smtp vendor sets (``X-Mailgun-Variables``), else by its Message-ID.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec

from crmd.plugins import MessageStatus, Nonce, PluginContext, ReceiptEvent, hookimpl
from crmd_providers.events import (
    METADATA_KEY,
    ReportsFor,
    at_unix,
    check_fresh,
    event_id,
    field,
    from_message_id_header,
    plain_id,
    reports_for_default,
    short_id,
    text,
)

NAME = "mailgun"
MIN_KEY = 16
STATUSES = {
    "delivered": MessageStatus.DELIVERED,
    "complained": MessageStatus.COMPLAINED,
    "opened": MessageStatus.OPENED,
    "clicked": MessageStatus.CLICKED,
}


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    signing_key: str = ""
    max_age: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 900.0
    reports_for: ReportsFor = msgspec.field(default_factory=reports_for_default)

    def __post_init__(self) -> None:
        if self.signing_key and len(self.signing_key) < MIN_KEY:
            raise ValueError("signing_key: too short to be Mailgun's webhook signing key")


class Signature(msgspec.Struct):
    timestamp: str | int
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    signature: Annotated[str, msgspec.Meta(max_length=200)]


class Posted(msgspec.Struct):
    signature: Signature
    event_data: dict[str, Any] = msgspec.field(name="event-data")


def posted(body: bytes) -> Posted:
    try:
        return msgspec.json.decode(body, type=Posted)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a Mailgun webhook: {exc}") from None


class MailgunSource:
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reports_for = tuple(settings.reports_for)
        self.key = settings.signing_key.encode()

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> Nonce | None:
        signed = posted(body).signature
        stamp = str(signed.timestamp)
        check_fresh(stamp, self.settings.max_age, time.time())
        expected = hmac.new(self.key, (stamp + signed.token).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signed.signature.lower().encode()):
            raise ValueError("the Mailgun signature does not match")
        # Good for max_age either side of now: remembered for as long as that.
        return Nonce(signed.token, 2 * self.settings.max_age)

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        return receipt(posted(body).event_data)

    async def close(self) -> None:
        pass


def receipt(data: dict[str, Any]) -> list[ReceiptEvent]:
    kind = data.get("event")
    status = STATUSES.get(kind) if isinstance(kind, str) else None
    delivery = field(data, "delivery-status")
    reason = text(delivery.get("message")) or text(delivery.get("description"))
    if kind == "failed":
        status = (
            MessageStatus.BOUNCED
            if data.get("severity") == "permanent"
            else MessageStatus.SOFT_BOUNCED
        )
        code = delivery.get("code")
        reason = f"{code} {reason} ({text(data.get('reason'))})" if code else reason
    elif kind == "clicked":
        reason = text(data.get("url"))
    if status is None:
        return []
    own = data.get("id")
    return [
        ReceiptEvent(
            status=status,
            at=at_unix(data.get("timestamp")),
            event_id=short_id(NAME, own) if own else event_id(NAME, msgspec.json.encode(data)),
            message_id=crmd_message_id(data),
            reason=reason[:300],
        )
    ]


def crmd_message_id(data: dict[str, Any]) -> str:
    variables = data.get("user-variables")
    if isinstance(variables, dict) and plain_id(variables.get(METADATA_KEY)):
        return plain_id(variables.get(METADATA_KEY))
    headers = field(field(data, "message"), "headers")
    return from_message_id_header(headers.get("message-id"))


@hookimpl
def crmd_receipt_sources(context: PluginContext) -> list[MailgunSource]:
    settings = context.settings(Settings)
    return [MailgunSource(settings)] if settings.signing_key else []
