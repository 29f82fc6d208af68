"""What a vendor plugin gives crmd, and what crmd gives it.

A vendor delivers messages (SMS, e-mail, WhatsApp...). crmd hands it batches of rendered
messages, each with crmd's own message id, and the vendor answers per message. Later the
vendor calls crmd back with receipts, which the same vendor object verifies and parses;
a vendor whose acceptance is the last word (``Accepted.sent``) takes no callbacks at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import msgspec


class OutgoingMessage(msgspec.Struct, frozen=True):
    message_id: str
    """crmd's id for this message. Treat it as an idempotency key: crmd may hand you the
    same message again after a crash, and you must not deliver it twice."""
    recipient: str
    """The customer's email address (or phone, for vendors that use one)."""
    phone: str
    text: str
    """The rendered plain-text body."""
    subject: str = ""
    """The rendered subject line, for vendors that carry one (e-mail); empty when the
    campaign has none."""
    html: str = ""
    """The rendered HTML body, empty when the campaign has none. An e-mail vendor sends
    ``text`` alone when this is empty, else both as ``multipart/alternative``."""
    unsubscribe_url: str = ""
    """The signed one-click unsubscribe link for this recipient, empty when there is none.
    When set, an e-mail vendor must send ``List-Unsubscribe: <url>`` and
    ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058)."""
    return_path: str = ""
    """The envelope sender (SMTP's MAIL FROM) to send this message with, empty: the
    vendor's own. crmd sets it when its bounces listener is on (``[bounces]``): an
    address of the bounce domain that names this message, so that its bounce names it
    too. An e-mail vendor that sends by SMTP uses it as MAIL FROM; the From header stays
    the vendor's."""


class Accepted(msgspec.Struct, frozen=True, tag="accepted"):
    message_id: str
    vendor_message_id: str
    sent: bool = False
    """True when the vendor's acceptance is all it will ever report (SMTP's 250): crmd
    records the message SENT at hand-over, in the same write, and expects no receipt for
    it (a later receipt, if any, still applies by rank). False: the message stays
    PENDING until a receipt says what became of it, or the receipt window closes."""


class Failed(msgspec.Struct, frozen=True, tag="failed"):
    message_id: str
    reason: str


class Retry(msgspec.Struct, frozen=True, tag="retry"):
    message_id: str
    after_seconds: float
    reason: str = ""


SendResult = Accepted | Failed | Retry


class VendorMisconfigured(Exception):
    """Raise this from ``send`` when no message can go out until someone changes a
    setting: a password the relay refuses, a sender address it will not take, a gateway
    that rejects your credentials. crmd does not retry the batch: the campaign stops in
    ``error``, its reason naming your vendor and carrying ``str(exc)``, which is also
    shown to the operator (so say what to fix, and never include a secret). Any other
    exception means "retry this batch later"."""


class ReceiptEvent(msgspec.Struct, frozen=True):
    status: str
    """SENT, DELIVERED, FAILED, OPENED, CLICKED, BOUNCED (a permanent failure after
    hand-over: the address is suppressed), COMPLAINED (called spam: suppressed at once)
    or SOFT_BOUNCED (a transient failure: counted, the status kept)."""
    at: datetime
    event_id: str
    """Unique per event at the vendor: a repeated event id is a duplicate."""
    message_id: str = ""
    """crmd's message id, when the vendor echoes it; else give vendor_message_id."""
    vendor_message_id: str = ""
    campaign_id: str = ""
    customer_id: str = ""
    """The original Mini-CRM's receipts name the campaign and customer instead."""
    reason: str = ""


class Nonce(msgspec.Struct, frozen=True):
    """What a receipt source's ``verify_receipt`` returns when the provider's signature
    covers a value that must be accepted once only (Mailgun's ``token``): crmd keeps
    ``value`` for ``seconds`` (your freshness window) in Redis, so every crmd process
    knows it. The same value again with the same body is the provider delivering its
    webhook again (a duplicate, taken); with another body it is a replay, refused."""

    value: str
    seconds: float


class CheckResult(msgspec.Struct, frozen=True):
    ok: bool
    detail: str = ""


@runtime_checkable
class Vendor(Protocol):
    """The object a vendor plugin returns from ``crmd_vendors``. Every method may be
    called concurrently; crmd bounds each call by a time budget and treats an exception
    or a timeout as "retry this batch later", logging it with the vendor's name, except
    ``VendorMisconfigured``, which stops the campaign."""

    name: str

    def rate_limit(self) -> float:
        """Messages per second this vendor accepts; crmd never sends faster."""

    async def send(self, messages: Sequence[OutgoingMessage]) -> Sequence[SendResult]:
        """Hand over a batch; answer one result per message, in any order. Raise
        ``VendorMisconfigured`` when no message can go until a setting changes."""

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``ValueError`` unless this callback really comes from the vendor (check
        its signature and freshness). Called before anything is parsed or stored. A
        vendor that reports nothing after ``Accepted(..., sent=True)`` refuses every
        callback."""

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        """The receipt events in a verified callback. Raise ``ValueError`` for a body
        you cannot read."""

    async def check(self) -> CheckResult:
        """Whether the settings work (credentials, reachability)."""

    async def close(self) -> None:
        """Release what the vendor holds (sessions, tasks) at shutdown."""


@runtime_checkable
class ReceiptSource(Protocol):
    """The object a plugin returns from ``crmd_receipt_sources``: the receipt half of a
    vendor, for events about mail another vendor sent (a provider's event webhook about
    mail crmd sent through its SMTP relay). Posted to ``/api/v1/deliveryReceipt/<name>``
    (when no vendor has that name), a callback goes to ``verify_receipt`` and then
    ``parse_receipts``, one after the other in a worker thread, under one time limit for
    both (``parse_receipts`` only when ``verify_receipt`` passed); anything they raise
    refuses it (401 from ``verify_receipt``, 422 from ``parse_receipts``)."""

    name: str
    reports_for: Sequence[str]
    """The vendors whose messages this source's events may name (``("smtp",)``): crmd
    applies an event only to a message one of them sent."""

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> Nonce | None:
        """Raise ``ValueError`` unless the callback really comes from the provider (its
        signature, its freshness). Return a ``Nonce`` when the signature covers a value
        that must be accepted once only, else None."""

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> Sequence[ReceiptEvent]:
        """The receipt events of a verified callback, each with a ``message_id`` crmd
        gave (events that name none are better left out: crmd drops them, counted).
        Raise ``ValueError`` for a body you cannot read."""

    async def close(self) -> None:
        """Release what the source holds at shutdown."""
