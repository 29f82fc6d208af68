"""Which delivery status wins. Receipts arrive late, twice, and out of order, so the
merge must not depend on their order: each status has a rank (``crmd.messages.RANK``)
and the highest seen wins.

PENDING < SENT < DELIVERED < OPENED < CLICKED, and the failures above them all: once
FAILED or BOUNCED, a message stays so (BOUNCED, the more specific, over FAILED). A late
SENT never overrides DELIVERED or FAILED. Each status's first-seen time is kept too (the
earliest timestamp reported for it), which is just as order-independent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec

from crmd.messages import RANK, MessageStatus


class Outcome(msgspec.Struct):
    status: str = MessageStatus.PENDING
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


def as_updates(
    status: str, at: datetime, now: datetime, reason: str = ""
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``merge`` as MongoDB updates of a stored message (``status``, ``rank`` and the
    first-seen ``times``), right whatever the message holds and in whatever order they
    come: the status rises only to a higher rank, and a status's first-seen time only
    falls. The same table as ``merge``, so the two cannot disagree."""
    rank = RANK[status]
    changes: dict[str, Any] = {"status": status, "rank": rank, "updatedAt": now}
    if reason:
        changes["reason"] = reason[:500]
    seen = at if at.tzinfo else at.replace(tzinfo=UTC)
    return [
        ({"rank": {"$lt": rank}}, {"$set": changes}),
        ({}, {"$min": {f"times.{status}": seen}}),
    ]


def as_pipeline(status: str, at: datetime, now: datetime, reason: str = "") -> list[dict[str, Any]]:
    """``as_updates`` in one statement (an update pipeline): the status, rank, reason and
    time of change only when the rank rises, the first-seen time whenever it is earlier.
    Every expression reads the message as it was before this update."""
    rank = RANK[status]
    rises = {"$lt": [{"$ifNull": ["$rank", 0]}, rank]}
    seen = at if at.tzinfo else at.replace(tzinfo=UTC)
    # Values from a receipt are $literal: a "$..." string would be read as a field path.
    changes: dict[str, Any] = {
        "status": {"$cond": [rises, {"$literal": status}, "$status"]},
        "rank": {"$cond": [rises, rank, "$rank"]},
        "updatedAt": {"$cond": [rises, now, "$updatedAt"]},
        f"times.{status}": {"$min": [{"$ifNull": [f"$times.{status}", seen]}, seen]},
    }
    if reason:
        changes["reason"] = {"$cond": [rises, {"$literal": reason[:500]}, "$reason"]}
    return [{"$set": changes}]
