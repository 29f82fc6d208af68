"""Postmark's webhooks, posted to ``/api/v1/deliveryReceipt/postmark``.

Settings, in ``[plugins.postmark]`` (off until a user name or a header token is set)::

    username = "postmark"                    # basic auth in the webhook's URL ...
    password = "$env:POSTMARK_HOOK_PASSWORD"
    header = "X-Webhook-Token"               # ... or a custom header Postmark sends
    token = "$env:POSTMARK_HOOK_TOKEN"
    reports_for = ["smtp"]

Postmark does not sign its webhooks: what proves one is Postmark's is the credential you
gave it, basic auth (``https://user:password@crm.example/api/v1/deliveryReceipt/postmark``)
or a custom header, compared in constant time; when both are set, both must match. Use
HTTPS. Delivery is DELIVERED, Bounce of Type HardBounce or BadEmailAddress BOUNCED,
SoftBounce, Transient or DnsError SOFT_BOUNCED, SpamComplaint COMPLAINED, Open OPENED,
Click CLICKED. The message is found by the ``crmd_message_id`` metadata the smtp vendor
sets (``X-PM-Metadata-crmd_message_id``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from crmd.plugins import MessageStatus, Nonce, PluginContext, ReceiptEvent, hookimpl
from crmd_providers.events import (
    MESSAGE_ID_HEADER,
    METADATA_KEY,
    ReportsFor,
    at_iso,
    decode_json,
    from_message_id_header,
    header,
    objects,
    plain_id,
    reports_for_default,
    short_id,
    text,
)

NAME = "postmark"
MIN_SECRET = 16
BOUNCES = {
    "HardBounce": MessageStatus.BOUNCED,
    "BadEmailAddress": MessageStatus.BOUNCED,
    "SoftBounce": MessageStatus.SOFT_BOUNCED,
    "Transient": MessageStatus.SOFT_BOUNCED,
    "DnsError": MessageStatus.SOFT_BOUNCED,
    "SpamComplaint": MessageStatus.COMPLAINED,
}
RECORDS = {
    "Delivery": MessageStatus.DELIVERED,
    "SpamComplaint": MessageStatus.COMPLAINED,
    "Open": MessageStatus.OPENED,
    "Click": MessageStatus.CLICKED,
}
TIMES = {"Delivery": "DeliveredAt", "Bounce": "BouncedAt", "SpamComplaint": "BouncedAt"}


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    username: str = ""
    password: str = ""
    header: str = ""
    """The name of a custom header Postmark sends with every webhook."""
    token: str = ""
    reports_for: ReportsFor = msgspec.field(default_factory=reports_for_default)

    def __post_init__(self) -> None:
        if bool(self.username) != bool(self.password):
            raise ValueError("password: username and password go together")
        if bool(self.header) != bool(self.token):
            raise ValueError("token: header and token go together")
        for name, secret in (("password", self.password), ("token", self.token)):
            if secret and len(secret) < MIN_SECRET:
                raise ValueError(f"{name}: at least {MIN_SECRET} random characters")

    @property
    def on(self) -> bool:
        return bool(self.username or self.header)


def same(given: str, wanted: str) -> bool:
    return hmac.compare_digest(given.encode(), wanted.encode())


class PostmarkSource:
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reports_for = tuple(settings.reports_for)

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> Nonce | None:
        settings = self.settings
        if settings.username and not self._basic_auth_matches(header(headers, "Authorization")):
            raise ValueError("wrong or missing basic auth")
        if settings.header and not same(header(headers, settings.header), settings.token):
            raise ValueError(f"wrong or missing {settings.header}")
        return None

    def _basic_auth_matches(self, value: str) -> bool:
        scheme, _, encoded = value.partition(" ")
        try:
            pair = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            pair = ""
        user, _, password = pair.partition(":")
        # Both compared, always: the answer takes as long whichever part is wrong.
        matched = same(user, self.settings.username) & same(password, self.settings.password)
        return scheme.lower() == "basic" and matched

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        record = decode_json(body)
        if not isinstance(record, dict):
            raise ValueError("Postmark posts one JSON object")
        return receipt(record, hashlib.sha256(body).hexdigest())

    async def close(self) -> None:
        pass


def receipt(record: dict[str, Any], digest: str) -> list[ReceiptEvent]:
    kind = record.get("RecordType")
    status = RECORDS.get(kind) if isinstance(kind, str) else None
    reason = text(record.get("Details"))
    if kind == "Bounce":
        status = BOUNCES.get(str(record.get("Type")))
        reason = f"{text(record.get('Type'))}: {text(record.get('Description'))} {reason}".strip()
    elif kind == "Click":
        reason = text(record.get("OriginalLink"))
    if status is None or not isinstance(kind, str):
        return []
    own = record.get("ID")
    at = at_iso(record.get(TIMES.get(kind, "ReceivedAt")))
    return [
        ReceiptEvent(
            status=status,
            at=at,
            # A bounce or complaint has an ID; a delivery, open or click is the same
            # event when Postmark posts the same body again.
            event_id=short_id(f"{NAME}:{kind}", own) if own else f"{NAME}:{kind}:{digest[:40]}",
            message_id=crmd_message_id(record),
            reason=reason[:300],
        )
    ]


def crmd_message_id(record: dict[str, Any]) -> str:
    metadata = record.get("Metadata")
    if isinstance(metadata, dict) and plain_id(metadata.get(METADATA_KEY)):
        return plain_id(metadata.get(METADATA_KEY))
    found = {str(p.get("Name", "")).lower(): p.get("Value") for p in objects(record.get("Headers"))}
    ours = plain_id(found.get(MESSAGE_ID_HEADER.lower()))
    return ours or from_message_id_header(found.get("message-id"))


@hookimpl
def crmd_receipt_sources(context: PluginContext) -> list[PostmarkSource]:
    settings = context.settings(Settings)
    return [PostmarkSource(settings)] if settings.on else []
