"""Webhooks' ``message.outcome`` from a batch of applied receipts, in bulk: nothing
read when no tenant listens, else one read of the logs the batch named and one insert
per tenant.

One event per message and outcome: a repeated receipt, or a batch redone after a
crash, has the same event id (``<log id>:<outcome>``) and is not delivered twice. A
receipt that ranks below the message's status still tells its outcome (a DELIVERED
reported after OPENED), so an endpoint learns every outcome, each once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts.apply import find_logs
from crmd.receipts.batch import ReceiptBatch
from crmd.store.tenant import TenantStore
from crmd.webhooks import subscribers
from crmd.webhooks.emit import Event, emit_many
from crmd.webhooks.kinds import OUTCOMES, Kind


async def emit_outcomes(
    db: AsyncDatabase[dict[str, Any]], redis: Redis, prefix: str, batches: Sequence[ReceiptBatch]
) -> int:
    """Emit the batches' outcomes to the tenants that listen; returns how many
    deliveries were recorded."""
    events: dict[tuple[str, str], tuple[str, ReceiptEvent]] = {}
    reporters: dict[str, list[str]] = {}
    for received in batches:
        if received.reports_for:
            reporters[received.vendor] = received.reports_for
        for event in received.events:
            if event.status in OUTCOMES:
                events.setdefault((received.vendor, event.event_id), (received.vendor, event))
    if not events:
        return 0
    listening = await subscribers.tenants_for(db, redis, prefix, Kind.MESSAGE_OUTCOME)
    if not listening:
        return 0
    logs = await find_logs(db, list(events.values()), reporters)
    per_user: dict[str, dict[str, Event]] = defaultdict(dict)
    for (vendor, event_id), (_, event) in events.items():
        found = logs.get((vendor, event_id))
        if found is None or found.userId not in listening:
            continue
        outcome = OUTCOMES[event.status]
        at = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
        data = {
            "messageId": found.id,
            "campaignId": found.campaignId,
            "customerId": found.customerId or None,
            "email": found.recipient or None,
            "outcome": outcome,
            "at": at,
            "reason": event.reason or None,
        }
        key = f"{found.id}:{outcome}"
        per_user[found.userId].setdefault(key, Event(data, key, at))
    recorded = 0
    for user, by_key in per_user.items():
        store = TenantStore(db, user, majority=True)  # as the receipts it follows
        recorded += await emit_many(
            store, redis, Kind.MESSAGE_OUTCOME, list(by_key.values()), prefix=prefix
        )
    return recorded
