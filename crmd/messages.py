"""A campaign's message: its id, the key a vendor sees, and its status with its rank.

One home for what campaigns (which write messages), receipts (which move their status),
suppressions (which find a message from an unsubscribe link) and the console (which
shows them) all need, so that none of them imports another for it. Pure: no database,
no stream, no plugin.

Each status has a rank and the highest reported wins (``crmd.receipts.status``):
PENDING < SENT < DELIVERED < OPENED < CLICKED, and the failures above them all, BOUNCED
(the more specific) over FAILED, and COMPLAINED (the recipient called it spam) above
every other. UNKNOWN and CANCELLED keep the rank of PENDING, so a receipt that comes
after all still lands; SUPPRESSED and HELD_OUT are final. SOFT_BOUNCED is reported but never held: a
transient failure (a full mailbox) is kept as its first-seen time and counted, and the
message keeps its status.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import StrEnum
from typing import Any


class MessageStatus(StrEnum):
    """Where a recipient's message is; stored upper-case in its log's ``status``."""

    PENDING = "PENDING"
    """Planned or handed over, with nothing heard yet."""
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    FAILED = "FAILED"
    BOUNCED = "BOUNCED"
    """A permanent failure reported after hand-over (a 5.x.x bounce): the address is
    suppressed."""
    COMPLAINED = "COMPLAINED"
    """The recipient reported the message as spam: the address is suppressed at once."""
    SOFT_BOUNCED = "SOFT_BOUNCED"
    """Reported, never held: a transient failure (4.x.x). Its first-seen time is kept in
    the log's ``times``; repeated soft bounces within ``[bounces] soft_window_days``
    suppress the address."""
    UNKNOWN = "UNKNOWN"
    """Given to messages still PENDING when a campaign's receipt window closes."""
    CANCELLED = "CANCELLED"
    """Given to messages never handed to the vendor when their campaign is cancelled."""
    SUPPRESSED = "SUPPRESSED"
    """A recipient on the suppression list when the campaign was planned, or when their
    message was to be handed over: never sent."""
    HELD_OUT = "HELD_OUT"
    """A recipient in the campaign's holdout group: never sent, on purpose, so that
    their orders show what the others would have done without the message
    (``crmd.campaigns.groups``). Final, like SUPPRESSED, and not a failure."""


S = MessageStatus
RANK: dict[str, int] = {
    S.PENDING: 0,
    S.SENT: 1,
    S.DELIVERED: 2,
    S.OPENED: 3,
    S.CLICKED: 4,
    S.FAILED: 5,
    S.BOUNCED: 6,
    S.COMPLAINED: 7,
    S.SOFT_BOUNCED: 0,
}
"""The statuses a receipt may report (PENDING aside) and their ranks."""
FINAL_RANK = 9
"""A SUPPRESSED message's rank: above every status a receipt may report."""
REPORTED = tuple(s for s in RANK if s != S.PENDING)
"""What a receipt may say of a message."""
REACHED = (S.SENT, S.DELIVERED, S.OPENED, S.CLICKED, S.COMPLAINED)
"""The statuses of a message that reached its recipient, as far as anyone knows."""
LOG_STATUSES = tuple(s.value for s in MessageStatus if s != S.SOFT_BOUNCED)
"""Every status a message's log may hold, in the order they are shown."""


TEST_SEND = "test-"
"""What a test send's message id begins with: it has no log, and its receipt is
expected to find none."""


def test_send_id() -> str:
    """A test send's message id: never a log's."""
    return f"{TEST_SEND}{secrets.token_hex(12)}"


def is_test_send(message_id: str | None) -> bool:
    return bool(message_id) and str(message_id).startswith(TEST_SEND)


def message_id(campaign: str, customer: str) -> str:
    """A recipient's message id: the campaign's id, so a receipt that names the message
    names its campaign, and a hash of the customer's."""
    digest = hashlib.sha256(f"{campaign}\x00{customer}".encode()).hexdigest()
    return f"{campaign}.{digest[:16]}"


def legacy_message_id(campaign: str, customer: str) -> str:
    """The message id of campaigns planned before ids named their campaign."""
    return hashlib.sha256(f"{campaign}\x00{customer}".encode()).hexdigest()[:24]


def send_key(log: dict[str, Any]) -> str:
    """The message id the vendor sees: the log's id, plus the retry round after a
    retry-failed (vendors dedupe by this id, so a new round needs a new one)."""
    round_ = log.get("round", 0)
    return log["_id"] if not round_ else f"{log['_id']}:r{round_}"


# Matched whole (fullmatch): $ would also match before a final line break.
_ROUND = re.compile(r"(?P<log>[0-9a-f]{24}(?:\.[0-9a-f]{16})?):r(?P<round>[0-9]{1,6})")
_CAMPAIGN = re.compile(r"(?P<campaign>[0-9a-f]{24})\.[0-9a-f]{16}")


def parse_send_key(key: str) -> tuple[str, int]:
    """(log id, round) from a message id; anything unexpected is taken as a log id
    (and then simply not found), never an error that could poison a batch."""
    match = _ROUND.fullmatch(key)
    return (match.group("log"), int(match.group("round"))) if match else (key, 0)


def campaign_of(log_id: str) -> str | None:
    """The campaign a log id names (None for a legacy id, or anything else)."""
    match = _CAMPAIGN.fullmatch(log_id)
    return match.group("campaign") if match else None
