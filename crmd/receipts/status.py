"""Which delivery status wins. Receipts arrive late, twice, and out of order, so the
merge must not depend on their order: each status has a rank and the highest seen wins.

PENDING < SENT < DELIVERED < OPENED < CLICKED, and the failures above them all: once
FAILED or BOUNCED, a message stays so (BOUNCED, the more specific, over FAILED). A late
SENT never overrides DELIVERED or FAILED. Each status's first-seen time is kept too (the
earliest timestamp reported for it), which is just as order-independent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

RANK = {
    "PENDING": 0,
    "SENT": 1,
    "DELIVERED": 2,
    "OPENED": 3,
    "CLICKED": 4,
    "FAILED": 5,
    "BOUNCED": 6,
}
STATUSES = tuple(RANK)
FINAL = frozenset({"FAILED", "BOUNCED"})
UNKNOWN = "UNKNOWN"
"""Given to messages still PENDING when a campaign's receipt window closes."""


class Outcome(msgspec.Struct):
    status: str = "PENDING"
    first_seen: dict[str, datetime] = msgspec.field(default_factory=dict)


def merge(outcome: Outcome, status: str, at: datetime) -> Outcome:
    """The outcome after one more receipt. Commutative and idempotent."""
    first = dict(outcome.first_seen)
    if status not in first or at < first[status]:
        first[status] = at
    winner = status if RANK[status] > RANK[outcome.status] else outcome.status
    return Outcome(winner, first)


def fold(receipts: Iterable[tuple[str, datetime]], start: Outcome | None = None) -> Outcome:
    outcome = start or Outcome()
    for status, at in receipts:
        outcome = merge(outcome, status, at)
    return outcome
