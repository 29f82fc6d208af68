"""Which message a report is about, and the receipt event it makes. Pure.

The address the report was mailed to names its message when it is a VERP address with a
good token (``verp.ReturnPaths``); so may an envelope sender the report quotes. Else the
original's Message-ID does, as the smtp vendor writes it: ``<send key@from domain>``,
any character a Message-ID does not allow written ``=XX``. Only a key of crmd's shape
counts; whose message it is, and its address, come from crmd's log later, never from
the mail.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime

import msgspec

from crmd.bounces.reports import Report
from crmd.messages import campaign_of, parse_send_key
from crmd.plugins.vendor import ReceiptEvent
from crmd.verp import SEPARATOR, ReturnPaths

_QUOTED = re.compile(rb"=([0-9A-F]{2})")
_LEGACY = re.compile(r"[0-9a-f]{24}")


class Named(msgspec.Struct, frozen=True):
    key: str
    """The message's send key (``crmd.messages.send_key``)."""
    how: str
    """``verp`` or ``message_id``."""
    forged: bool = False
    """A VERP token was given whose HMAC did not match."""


def key_of_message_id(header: str, domain: str) -> str | None:
    """The send key in a Message-ID of crmd's, or None."""
    inside = header.strip().removeprefix("<").removesuffix(">")
    left, at, right = inside.rpartition("@")
    if not at or right.lower() != domain.lower() or not left.isascii():
        return None
    key = _QUOTED.sub(lambda m: bytes.fromhex(m.group(1).decode()), left.encode()).decode(
        "ascii", "replace"
    )
    log_id, _ = parse_send_key(key)
    return key if campaign_of(log_id) or _LEGACY.fullmatch(log_id) else None


def named_message(
    report: Report, recipients: Iterable[str], return_paths: ReturnPaths, message_domain: str
) -> Named | None:
    """The message the report names: by a VERP address first, then by Message-ID. None
    when it names none. The caller first drops a mail whose recipient carries a forged
    token (``forged_token``); ``forged`` here tells of one the report's body quotes."""
    forged = False
    for address in (*recipients, *report.senders):
        if not return_paths.is_ours(address.strip().strip("<>")):
            continue
        key = return_paths.read(address)
        if key is not None:
            return Named(key, "verp")
        forged = forged or "+" in address
    for header in report.message_ids:
        key = key_of_message_id(header, message_domain)
        if key is not None:
            return Named(key, "message_id", forged)
    return None


def forged_token(recipients: Iterable[str], return_paths: ReturnPaths) -> bool:
    """Whether a recipient is a VERP address of ours (``<local>+...@<bounce domain>``)
    whose token does not verify. Such a mail is dropped whole: its Message-ID is not
    tried, since a mail that forged the signed name will not be believed on the
    unsigned one."""
    prefix = f"{return_paths.local}{SEPARATOR}".lower()
    for recipient in recipients:
        address = recipient.strip().strip("<>")
        local = address.rpartition("@")[0].lower()
        if (
            return_paths.is_ours(address)
            and local.startswith(prefix)
            and return_paths.read(address) is None
        ):
            return True
    return False


def receipt_for(report: Report, key: str, at: datetime) -> ReceiptEvent:
    """The report as a receipt event for its message. The event id is the message's and
    the report's: the same report mailed again is a duplicate."""
    event_id = hashlib.sha256(f"{key}\x00{report.report_id}".encode()).hexdigest()[:40]
    return ReceiptEvent(
        status=report.status,
        at=at,
        event_id=f"bounce-{event_id}",
        message_id=key,
        reason=report.reason,
    )
