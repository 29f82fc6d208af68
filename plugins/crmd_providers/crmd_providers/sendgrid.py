"""SendGrid's Event Webhook, signed ("Signed Event Webhook Requests"), posted to
``/api/v1/deliveryReceipt/sendgrid``.

Settings, in ``[plugins.sendgrid]`` (off until ``public_key`` is set)::

    public_key = "$env:SENDGRID_WEBHOOK_KEY"  # the verification key SendGrid shows (base64)
    max_age = 600                             # seconds a signed timestamp stays good
    reports_for = ["smtp"]

SendGrid signs ``timestamp + body`` with ECDSA (P-256, SHA-256): the base64 signature in
``X-Twilio-Email-Event-Webhook-Signature``, the timestamp in
``X-Twilio-Email-Event-Webhook-Timestamp``. delivered is DELIVERED, bounce BOUNCED (type
``blocked`` SOFT_BOUNCED), deferred SOFT_BOUNCED, dropped FAILED, spamreport COMPLAINED,
open OPENED, click CLICKED. The message is found by the ``crmd_message_id`` unique
argument the smtp vendor sets (``X-SMTPAPI``); each event's ``sg_event_id`` is its id.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crmd.plugins import MessageStatus, Nonce, PluginContext, ReceiptEvent, hookimpl
from crmd_providers.events import (
    METADATA_KEY,
    ReportsFor,
    at_unix,
    check_fresh,
    decode_json,
    event_id,
    header,
    plain_id,
    reports_for_default,
    short_id,
    text,
)

NAME = "sendgrid"
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
STATUSES = {
    "delivered": MessageStatus.DELIVERED,
    "deferred": MessageStatus.SOFT_BOUNCED,
    "dropped": MessageStatus.FAILED,
    "spamreport": MessageStatus.COMPLAINED,
    "open": MessageStatus.OPENED,
    "click": MessageStatus.CLICKED,
}


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    public_key: str = ""
    """The Signed Event Webhook's verification key: base64 of its DER public key."""
    max_age: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = 600.0
    reports_for: ReportsFor = msgspec.field(default_factory=reports_for_default)

    def __post_init__(self) -> None:
        if self.public_key:
            load_key(self.public_key)


def load_key(text_key: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(text_key.strip(), validate=True))
    except ValueError:
        raise ValueError("public_key: not the base64 of a DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("public_key: not an ECDSA P-256 key, as SendGrid's is")
    return key


class SendGridSource:
    name = NAME

    def __init__(self, settings: Settings, log: Any) -> None:
        self.settings = settings
        self.log = log
        self.reports_for = tuple(settings.reports_for)
        self.key = load_key(settings.public_key)

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> Nonce | None:
        stamp = header(headers, TIMESTAMP)
        check_fresh(stamp, self.settings.max_age, time.time())
        try:
            signature = base64.b64decode(header(headers, SIGNATURE), validate=True)
            self.key.verify(signature, stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise ValueError("the SendGrid signature does not match") from None
        return None

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        events = decode_json(body)
        if not isinstance(events, list):
            raise ValueError("SendGrid posts a JSON array of events")
        found, unreadable = [], 0
        for event in events:
            try:
                found += receipt(event) if isinstance(event, dict) else []
            except ValueError:  # one bad event must not have SendGrid retry the batch
                unreadable += 1
        if unreadable:
            self.log.warning("sendgrid.events_unreadable", count=unreadable)
        return found

    async def close(self) -> None:
        pass


def receipt(event: dict[str, Any]) -> list[ReceiptEvent]:
    """One SendGrid event as crmd's receipt; [] for the kinds crmd does not record
    (processed, unsubscribe...)."""
    kind = event.get("event")
    status = STATUSES.get(kind) if isinstance(kind, str) else None
    reason = text(event.get("reason")) or text(event.get("response"))
    if kind == "bounce":
        blocked = event.get("type") == "blocked"
        status = MessageStatus.SOFT_BOUNCED if blocked else MessageStatus.BOUNCED
        classification = text(event.get("bounce_classification"))
        reason = "; ".join(p for p in (classification, text(event.get("status")), reason) if p)
    elif kind == "click":
        reason = text(event.get("url"))
    if status is None:
        return []
    own = event.get("sg_event_id")
    return [
        ReceiptEvent(
            status=status,
            at=at_unix(event.get("timestamp")),
            event_id=short_id(NAME, own) if own else event_id(NAME, msgspec.json.encode(event)),
            message_id=plain_id(event.get(METADATA_KEY)),
            reason=reason[:300],
        )
    ]


@hookimpl
def crmd_receipt_sources(context: PluginContext) -> list[SendGridSource]:
    settings = context.settings(Settings)
    return [SendGridSource(settings, context.log)] if settings.public_key else []
