"""Reading a mail that came back: a delivery status notification (RFC 3464) or a
feedback-loop complaint (ARF, RFC 5965), as what it says happened and the clues to which
message it happened to. Pure: bytes in, values out, and never an exception out (the
email package meets hostile input here).

A DSN is a ``multipart/report`` with a ``message/delivery-status`` part: its first block
of fields is about the report, each further block about one recipient. ``Action: failed``
with a 5.x.x ``Status`` is a hard bounce (BOUNCED); a 4.x.x status, or ``Action:
delayed``, a soft one (SOFT_BOUNCED); ``delivered`` is DELIVERED. An ARF report is a
``multipart/report`` with a ``message/feedback-report`` part; ``Feedback-Type: abuse``
(or ``fraud``) is a complaint (COMPLAINED). Both usually attach the original message
(``message/rfc822``) or its headers (``text/rfc822-headers``), whose Message-ID names the
message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.policy import default
from typing import Literal

import msgspec

from crmd.messages import MessageStatus

S = MessageStatus
Dropped = Literal["not_a_report", "broken", "no_outcome", "not_a_complaint"]
"""Why a mail says nothing crmd can use: the counter's labels."""
MAX_REASON = 300
COMPLAINTS = frozenset({"abuse", "fraud"})
"""Feedback types that are a recipient's complaint (``not-spam``, ``auth-failure``,
``virus`` and ``other`` are not)."""
SEVERITY: dict[str, int] = {S.BOUNCED: 3, S.SOFT_BOUNCED: 2, S.DELIVERED: 1}
_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
_REPLY = re.compile(r"\b([245])[0-9]{2}\b")
_BROKEN = ("NoBoundaryInMultipartDefect", "StartBoundaryNotFoundDefect")


class Report(msgspec.Struct, frozen=True):
    status: str
    """BOUNCED, SOFT_BOUNCED, DELIVERED or COMPLAINED."""
    reason: str
    """The status and the diagnostic (a DSN), or the feedback type (ARF)."""
    report_id: str
    """The report's own Message-ID, else a digest of its bytes: the same report sent
    again is the same report."""
    message_ids: tuple[str, ...] = ()
    """The Message-ID of the original message, from what the report attached."""
    senders: tuple[str, ...] = ()
    """Envelope senders the report quotes (ARF's Original-Mail-From, the attached
    Return-Path): each may be a VERP address."""


class Unusable(msgspec.Struct, frozen=True):
    why: Dropped
    detail: str = ""


def read_report(raw: bytes) -> Report | Unusable:
    """What a received mail reports, or why it is of no use."""
    try:
        return _read(raw)
    except Exception as exc:  # hostile MIME: a drop, never an error
        return Unusable("broken", f"{type(exc).__name__}: {exc}"[:200])


def _read(raw: bytes) -> Report | Unusable:
    mail = BytesParser(policy=default).parsebytes(raw)
    broken = [type(d).__name__ for d in mail.defects if type(d).__name__ in _BROKEN]
    if mail.get_content_type() != "multipart/report":
        return Unusable("not_a_report", mail.get_content_type())
    if broken or not mail.is_multipart():
        return Unusable("broken", ", ".join(broken) or "a multipart/report with no parts")
    parts = {part.get_content_type(): part for part in mail.iter_parts()}
    report_id = _one_line(str(mail.get("Message-ID", ""))) or hashlib.sha256(raw).hexdigest()
    originals = _original_headers(parts)
    message_ids = tuple(i for h in originals if (i := _one_line(str(h.get("Message-ID", "")))))
    senders = [_one_line(str(h.get("Return-Path", ""))) for h in originals]
    if "message/delivery-status" in parts:
        found = _delivery_status(parts["message/delivery-status"])
        if isinstance(found, Unusable):
            return found
        status, reason = found
    elif "message/feedback-report" in parts:
        fields = _blocks(parts["message/feedback-report"])
        if not fields:
            return Unusable("broken", "an empty feedback report")
        kind = _one_line(str(fields[0].get("Feedback-Type", ""))).lower()
        if kind not in COMPLAINTS:
            return Unusable("not_a_complaint", kind or "no Feedback-Type")
        status, reason = S.COMPLAINED, "complaint"
        senders.append(_one_line(str(fields[0].get("Original-Mail-From", ""))))
    else:
        return Unusable("not_a_report", f"a report of type {mail.get_param('report-type')!r}")
    return Report(status, reason, report_id, message_ids, tuple(s for s in senders if s))


def _delivery_status(part: Message) -> tuple[str, str] | Unusable:
    """The most severe outcome among the recipients' blocks, with its reason."""
    blocks = _blocks(part)
    if len(blocks) < 2:
        return Unusable("broken", "a delivery-status part with no recipient")
    best: tuple[str, str] | None = None
    for fields in blocks[1:]:
        found = _recipient_outcome(fields)
        if found is not None and (best is None or SEVERITY[found[0]] > SEVERITY[best[0]]):
            best = found
    if best is None:
        return Unusable("no_outcome", "no failed, delayed or delivered recipient")
    return best


def _recipient_outcome(fields: Message) -> tuple[str, str] | None:
    action = _one_line(str(fields.get("Action", ""))).lower()
    status = _one_line(str(fields.get("Status", ""))).split(" ")[0]
    diagnostic = _one_line(str(fields.get("Diagnostic-Code", "")))
    code = _STATUS.fullmatch(status)
    klass = code.group(1) if code else None
    if klass is None:  # no usable Status: the diagnostic's reply code, if any
        reply = _STATUS.search(diagnostic) or _REPLY.search(diagnostic)
        klass = reply.group(1) if reply else None
    reason = " ".join(w for w in (status if code else "", _diagnostic(diagnostic)) if w)
    if action == "delayed":
        return S.SOFT_BOUNCED, reason[:MAX_REASON] or "delayed"
    if action == "failed" and klass == "5":
        return S.BOUNCED, reason[:MAX_REASON] or "bounced"
    if action == "failed" and klass == "4":
        return S.SOFT_BOUNCED, reason[:MAX_REASON]
    if action == "delivered":
        return S.DELIVERED, ""
    return None


def _diagnostic(text: str) -> str:
    """``smtp; 550 5.1.1 ...`` without its type."""
    kind, semi, rest = text.partition(";")
    return rest.strip() if semi and " " not in kind.strip() else text


def _blocks(part: Message) -> list[Message]:
    """A message/delivery-status or message/feedback-report part's blocks of fields."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [b for b in payload if isinstance(b, Message)]
    return []


def _original_headers(parts: Mapping[str, Message]) -> list[Message]:
    """The attached original's headers: a message/rfc822 part, or text/rfc822-headers."""
    found: list[Message] = []
    attached = parts.get("message/rfc822")
    if attached is not None:
        found += [m for m in _blocks(attached)][:1]
    headers = parts.get("text/rfc822-headers")
    if isinstance(headers, EmailMessage):
        text = headers.get_content()
        if isinstance(text, str):
            found.append(HeaderParser(policy=default).parsestr(text.lstrip()))
    return found


def _one_line(text: str) -> str:
    return " ".join(text.split())[:MAX_REASON]
