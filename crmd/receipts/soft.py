"""Soft bounces: a transient failure (a full mailbox, a server down for the day) does
not suppress an address, but ``limit`` of them within ``window_days``, each for another
message, do (``[bounces] soft_limit`` and ``soft_window_days``).

Each soft bounce is one document in ``soft_bounces`` per (tenant, message), ``_id`` the
message's log id: a report redelivered, or a second report of the same message's delay,
is inserted once and counts once. The address is crmd's log's, never the report's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import structlog
from pymongo.asynchronous.database import AsyncDatabase

from crmd.plugins.vendor import ReceiptEvent
from crmd.store.documents import Doc, ReceiptTarget
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new
from crmd.suppressions.entries import Entry, suppress

log = structlog.get_logger(__name__)
COLLECTION = "soft_bounces"


class SoftBounceRule(msgspec.Struct, frozen=True):
    limit: int = 3
    window_days: int = 7

    def reason(self, count: int) -> str:
        return f"{count} soft bounces within {self.window_days} days"


DEFAULT_RULE = SoftBounceRule()


async def count_soft_bounces(
    db: AsyncDatabase[Doc],
    rule: SoftBounceRule,
    bounced: Sequence[tuple[ReceiptEvent, ReceiptTarget]],
) -> int:
    """Record each soft bounce, and suppress the addresses that reached the limit;
    returns how many were suppressed. Safe to repeat."""
    per_user: dict[str, dict[str, Doc]] = defaultdict(dict)
    for event, found in bounced:
        if found.recipient:
            at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
            per_user[found.userId].setdefault(
                found.id,
                {
                    "_id": found.id,
                    "email": found.recipient,
                    "at": at,
                    "campaignId": found.campaignId,
                    "customerId": found.customerId,
                },
            )
    since = datetime.now(UTC) - timedelta(days=rule.window_days)
    suppressed = 0
    for user, docs in per_user.items():
        store = TenantStore(db, user)
        await insert_new(store[COLLECTION].insert_many(list(docs.values())))
        entries = []
        last_of = {doc["email"]: doc for doc in docs.values()}
        for email, doc in last_of.items():
            count = await store[COLLECTION].count_documents({"email": email, "at": {"$gte": since}})
            if count >= rule.limit:
                reason = rule.reason(count)
                entries.append(Entry(email, reason, "bounce", doc["campaignId"], doc["customerId"]))
                log.info("receipt.soft_bounce_limit", user=user, count=count)
        if entries:
            suppressed += (await suppress(store, entries))[0]
    return suppressed
