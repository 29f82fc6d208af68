"""The webhook contract, as data: what crmd POSTs to the gateway, what the gateway
answers, and the receipts it posts back. Pure: decoding and mapping, no I/O.

crmd → gateway, ``POST <url>``, signed (Standard Webhooks: ``webhook-id``,
``webhook-timestamp``, ``webhook-signature``)::

    {"receiptUrl": "https://crmd.example/api/v1/deliveryReceipt/webhook",
     "messages": [{"id": "<crmd's message id>", "to": "+919900000000",
                   "phone": "+919900000000", "email": "asha@example.com",
                   "text": "Hi Asha", "subject": "...", "html": "...",
                   "unsubscribeUrl": "https://..."}]}

``to`` is the phone when the customer has one, else the e-mail address; empty fields are
left out. ``id`` is an idempotency key (a re-send after a crash carries the same ids, and
the same batch the same ``webhook-id``). The gateway answers 2xx with one result per
message (a message left out is sent again later)::

    {"results": [{"id": "...", "status": "accepted", "vendorId": "gw-1"},
                 {"id": "...", "status": "failed", "reason": "not a mobile number"},
                 {"id": "...", "status": "retry", "after": 30, "reason": "busy"}]}

gateway → crmd, ``POST <receiptUrl>``, signed the same way with the same secret::

    {"receipts": [{"id": "<crmd's message id>", "vendorId": "gw-1",
                   "status": "DELIVERED", "timestamp": "2026-05-01T09:30:00Z",
                   "eventId": "evt-1", "reason": ""}]}

``status`` is one of SENT, DELIVERED, FAILED, OPENED, CLICKED, BOUNCED (any case); a
receipt names its message by ``id`` or ``vendorId``; ``eventId`` (unique at the gateway)
is how a repeated receipt is known, and defaults to ``<webhook-id>.<index>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from crmd.plugins import Accepted, Failed, OutgoingMessage, ReceiptEvent, Retry, SendResult

MAX_AFTER = 3600.0


class Message(msgspec.Struct, rename="camel", omit_defaults=True):
    id: str
    to: str
    phone: str = ""
    email: str = ""
    text: str = ""
    subject: str = ""
    html: str = ""
    unsubscribe_url: str = ""


class Batch(msgspec.Struct, rename="camel"):
    receipt_url: str
    messages: list[Message]


class Result(msgspec.Struct, rename="camel"):
    id: str
    status: Literal["accepted", "failed", "retry"]
    vendor_id: str = ""
    reason: str = ""
    after: Annotated[float, msgspec.Meta(ge=0)] = 5.0


class Answer(msgspec.Struct):
    results: list[Result]


class Receipt(msgspec.Struct, rename="camel"):
    status: str
    timestamp: datetime
    id: str = ""
    vendor_id: str = ""
    event_id: str = ""
    reason: str = ""


class Receipts(msgspec.Struct):
    receipts: list[Receipt]


_answer = msgspec.json.Decoder(Answer).decode
_receipts = msgspec.json.Decoder(Receipts).decode


def batch_body(messages: Sequence[OutgoingMessage], receipt_url: str) -> bytes:
    """The JSON crmd POSTs for ``messages``."""
    return msgspec.json.encode(
        Batch(
            receipt_url,
            [
                Message(
                    id=m.message_id,
                    to=m.phone or m.recipient,
                    phone=m.phone,
                    email=m.recipient,
                    text=m.text,
                    subject=m.subject,
                    html=m.html,
                    unsubscribe_url=m.unsubscribe_url,
                )
                for m in messages
            ],
        )
    )


def batch_id(messages: Sequence[OutgoingMessage]) -> str:
    """The batch's ``webhook-id``: the same messages, the same id, so a gateway can tell
    a batch sent again from a new one."""
    digest = hashlib.sha256("\n".join(m.message_id for m in messages).encode()).hexdigest()
    return f"msg_{digest[:32]}"


def read_answer(body: bytes) -> list[SendResult]:
    """The gateway's results; ValueError naming what is wrong with an unreadable answer."""
    try:
        answer = _answer(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"unreadable answer from the gateway: {exc}") from None
    results: list[SendResult] = []
    for result in answer.results:
        if result.status == "accepted":
            results.append(Accepted(result.id, result.vendor_id or result.id))
        elif result.status == "failed":
            results.append(Failed(result.id, result.reason[:300] or "refused by the gateway"))
        else:
            results.append(Retry(result.id, min(result.after, MAX_AFTER), result.reason[:300]))
    return results


def read_receipts(body: bytes, webhook_id: str) -> list[ReceiptEvent]:
    """The events of a verified receipt callback; ValueError for an unreadable one."""
    try:
        receipts = _receipts(body).receipts
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"unreadable receipt: {exc}") from None
    events = []
    for index, receipt in enumerate(receipts):
        if not receipt.id and not receipt.vendor_id:
            raise ValueError(f"receipt {index} names no message: give id or vendorId")
        events.append(
            ReceiptEvent(
                status=receipt.status.upper(),
                at=receipt.timestamp,
                event_id=receipt.event_id or f"{webhook_id}.{index}",
                message_id=receipt.id,
                vendor_message_id=receipt.vendor_id,
                reason=receipt.reason,
            )
        )
    return events
