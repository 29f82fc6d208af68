"""Amazon SES's events, delivered by an SNS topic to ``/api/v1/deliveryReceipt/ses``.

Settings, in ``[plugins.ses]`` (off until ``topic_arns`` is set)::

    topic_arns = ["arn:aws:sns:eu-west-1:123456789012:ses-events"]
    reports_for = ["smtp"]     # the vendors whose mail SES carries
    max_age = 3600             # seconds either side of now a message's Timestamp may be

Only messages of the topics named are taken, and only their subscriptions confirmed:
anyone can make an SNS topic, and AWS signs its messages as it signs yours.

A message whose signed ``Timestamp`` is over ``max_age`` from now is refused, and its
``MessageId`` is taken once: the same id with another body, while it could still be
fresh, is a replay and refused; the same body again is SNS delivering it again (and
taken). SNS gives up retrying an HTTP(S) delivery within 3,600 s whatever the
delivery policy (by default it retries 3 times, 20 s apart), hence the default.

Both SES forms are read: notifications (``notificationType``) and event publishing
(``eventType``). Delivery is DELIVERED, a Permanent bounce BOUNCED (the address is
suppressed), a Transient or Undetermined one SOFT_BOUNCED, a Complaint COMPLAINED, Open
OPENED, Click CLICKED, Reject FAILED; one receipt per recipient. The message is found by
the ``X-Crmd-Message-Id`` header among ``mail.headers`` (turn on "Include original
headers"), else by its ``Message-ID`` (``mail.commonHeaders.messageId``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from crmd.plugins import MessageStatus, Nonce, PluginContext, ReceiptEvent, hookimpl, is_loopback
from crmd_providers.events import (
    MESSAGE_ID_HEADER,
    ReportsFor,
    at_iso,
    check_fresh,
    decode_json,
    field,
    from_message_id_header,
    objects,
    plain_id,
    reports_for_default,
    text,
)
from crmd_providers.sns import MAX_CERTIFICATE, Envelope, Fetch, SnsVerifier

NAME = "ses"
TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}$"
TIMEOUT = 4.0
MAX_RECIPIENTS = 50
MAX_AGE = 3600.0
"""SNS retries an HTTP(S) delivery for at most 3,600 s, a limit of every delivery policy."""
"""SES takes at most 50 recipients a message (crmd sends one)."""


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    topic_arns: list[Annotated[str, msgspec.Meta(pattern=TOPIC_ARN)]] = []
    """The SNS topics whose messages are taken (and whose subscriptions are confirmed);
    empty turns the plugin off."""
    reports_for: ReportsFor = msgspec.field(default_factory=reports_for_default)
    max_age: Annotated[float, msgspec.Meta(gt=0, le=86_400)] = MAX_AGE
    """Seconds either side of now a message's signed Timestamp may be."""
    sns_endpoint: str = ""
    """Tests only: a loopback ``http://127.0.0.1:<port>`` that certificates and
    confirmations are fetched from instead of AWS (the host check still applies)."""

    def __post_init__(self) -> None:
        if self.sns_endpoint and not _loopback_url(self.sns_endpoint):
            raise ValueError("sns_endpoint: only a loopback http:// URL, for tests")

    @property
    def on(self) -> bool:
        return bool(self.topic_arns)


def _loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and is_loopback(parts.hostname or "")


def fetcher(http: aiohttp.ClientSession) -> Fetch:
    async def fetch(url: str) -> bytes:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with http.get(url, timeout=timeout, allow_redirects=False) as answer:
            if answer.status != 200:
                raise ValueError(f"HTTP {answer.status}")
            return await answer.content.read(MAX_CERTIFICATE + 1)

    return fetch


class SesSource:
    name = NAME

    def __init__(self, settings: Settings, verifier: SnsVerifier, log: Any) -> None:
        self.settings = settings
        self.reports_for = tuple(settings.reports_for)
        self.verifier = verifier
        self.log = log

    def envelope(self, body: bytes) -> Envelope:
        try:
            return msgspec.json.decode(body, type=Envelope)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not an SNS message: {exc}") from None

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> Nonce | None:
        envelope = self.envelope(body)
        if envelope.topic_arn not in self.settings.topic_arns:
            raise ValueError(f"topic {envelope.topic_arn[:200]!r} is not in topic_arns")
        try:
            sent = at_iso(envelope.timestamp).timestamp()
        except ValueError:
            raise ValueError("no usable Timestamp") from None
        check_fresh(str(sent), self.settings.max_age, time.time())
        self.verifier.verify(envelope)
        # Good for max_age either side of now: remembered for as long as that.
        return Nonce(envelope.message_id, 2 * self.settings.max_age)

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        envelope = self.envelope(body)
        if envelope.type == "SubscriptionConfirmation":
            self.verifier.confirm(envelope)
            self.log.info("ses.subscription_confirmed", topic=envelope.topic_arn)
            return []
        if envelope.type == "UnsubscribeConfirmation":
            self.log.info("ses.unsubscribed", topic=envelope.topic_arn)
            return []
        event = decode_json(envelope.message.encode())
        if not isinstance(event, dict):
            raise ValueError("the SNS message is not an SES event")
        return ses_events(event, envelope.message_id)

    async def close(self) -> None:
        pass


def ses_events(event: dict[str, Any], sns_id: str) -> list[ReceiptEvent]:
    """An SES event (either form) as crmd's receipts, one per recipient; [] for the
    kinds crmd does not record (Send, DeliveryDelay, Rendering Failure...)."""
    kind = event.get("eventType") or event.get("notificationType")
    if not isinstance(kind, str):
        return []
    mail, detail = field(event, "mail"), field(event, kind.lower())
    status, reason, recipients = "", "", 1
    if kind == "Delivery":
        status, reason = MessageStatus.DELIVERED, text(detail.get("smtpResponse"))
        recipients = len(detail.get("recipients") or [""])
    elif kind == "Bounce":
        bounced = objects(detail.get("bouncedRecipients"))
        status = (
            MessageStatus.BOUNCED
            if detail.get("bounceType") == "Permanent"
            else MessageStatus.SOFT_BOUNCED
        )
        diagnostic = next((text(b.get("diagnosticCode")) for b in bounced), "")
        reason = f"{text(detail.get('bounceType'))}/{text(detail.get('bounceSubType'))}"
        reason += f": {diagnostic}" if diagnostic else ""
        recipients = len(bounced) or 1
    elif kind == "Complaint":
        status = MessageStatus.COMPLAINED
        reason = text(detail.get("complaintFeedbackType")) or "complaint"
        recipients = len(objects(detail.get("complainedRecipients"))) or 1
    elif kind in ("Open", "Click", "Reject"):
        status = {
            "Open": MessageStatus.OPENED,
            "Click": MessageStatus.CLICKED,
            "Reject": MessageStatus.FAILED,
        }[kind]
        reason = text(detail.get("link")) or text(detail.get("reason"))
    if not status:
        return []
    at = at_iso(detail.get("timestamp") or mail.get("timestamp"))
    message_id = crmd_message_id(mail)
    return [
        ReceiptEvent(status, at, f"ses:{sns_id}:{i}", message_id=message_id, reason=reason)
        for i in range(min(recipients, MAX_RECIPIENTS))
    ]


def crmd_message_id(mail: dict[str, Any]) -> str:
    """crmd's id from the mail's headers: ``X-Crmd-Message-Id``, else ``Message-ID``."""
    found = {str(p.get("name", "")).lower(): p.get("value") for p in objects(mail.get("headers"))}
    return (
        plain_id(found.get(MESSAGE_ID_HEADER.lower()))
        or from_message_id_header(field(mail, "commonHeaders").get("messageId"))
        or from_message_id_header(found.get("message-id"))
    )


@hookimpl
def crmd_receipt_sources(context: PluginContext) -> list[SesSource]:
    settings = context.settings(Settings)
    if not settings.on:
        return []
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:  # crmd check-config checking settings: nothing will be fetched
        loop = None
    verifier = SnsVerifier(fetcher(context.http), loop, settings.sns_endpoint, TIMEOUT)
    return [SesSource(settings, verifier, context.log)]
