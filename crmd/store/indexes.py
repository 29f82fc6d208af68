"""Index declarations and the start-up step that ensures them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

log = structlog.get_logger(__name__)

IndexSpec = Mapping[str, Sequence[IndexModel]]

# collection -> its indexes, all declared here. Tenant data is led by userId; users are
# the tenants themselves.
INDEXES: IndexSpec = {
    "users": (
        IndexModel([("sub", ASCENDING)], unique=True, name="sub_unique"),
        IndexModel([("email", ASCENDING)], name="email"),
    ),
    # Pages are ranges of n, the order records arrived in (crmd.store.numbering).
    "customers": (
        IndexModel([("userId", ASCENDING), ("n", ASCENDING)], name="user_n"),
        IndexModel(
            [("userId", ASCENDING), ("customer_external_id", ASCENDING)], name="user_external_id"
        ),
        IndexModel([("userId", ASCENDING), ("email", ASCENDING)], name="user_email"),
        # What segment rules filter on most; each index slows imports, so only these.
        IndexModel([("userId", ASCENDING), ("spend", ASCENDING)], name="user_spend"),
        IndexModel([("userId", ASCENDING), ("lastActive", ASCENDING)], name="user_last_active"),
        IndexModel([("userId", ASCENDING), ("visits", ASCENDING)], name="user_visits"),
    ),
    "campaigns": (IndexModel([("userId", ASCENDING), ("n", ASCENDING)], name="user_n"),),
    # A log's _id is a hash of (campaign, customer), so it is unique per recipient without
    # an index of its own (each index costs SecantusDB a write on every update).
    "communication_log": (
        IndexModel(
            [("userId", ASCENDING), ("campaignId", ASCENDING), ("status", ASCENDING)],
            name="user_campaign_status",
        ),
        IndexModel([("vendor", ASCENDING), ("vendorMessageId", ASCENDING)], name="vendor_message"),
        IndexModel(
            [("userId", ASCENDING), ("campaignId", ASCENDING), ("seq", ASCENDING)],
            name="user_campaign_seq",
        ),
    ),
    # A campaign's plan, a chunk of recipients a document (crmd.campaigns.chunks).
    "send_chunks": (
        IndexModel(
            [("userId", ASCENDING), ("campaignId", ASCENDING), ("done", ASCENDING)],
            name="user_campaign_done",
        ),
    ),
    # One document per soft-bounced message (its log id): counted per address.
    "soft_bounces": (
        IndexModel(
            [("userId", ASCENDING), ("email", ASCENDING), ("at", ASCENDING)],
            name="user_email_at",
        ),
    ),
    "receipt_events": (
        IndexModel([("userId", ASCENDING), ("campaignId", ASCENDING)], name="user_campaign"),
    ),
    "segments": (IndexModel([("userId", ASCENDING), ("n", ASCENDING)], name="user_n"),),
    "orders": (
        IndexModel([("userId", ASCENDING), ("n", ASCENDING)], name="user_n"),
        IndexModel(
            [("userId", ASCENDING), ("customer_external_id", ASCENDING)],
            name="user_customer_external_id",
        ),
        IndexModel(
            [("userId", ASCENDING), ("customerEmail", ASCENDING)], name="user_customer_email"
        ),
    ),
    "uploads": (
        IndexModel([("userId", ASCENDING), ("n", ASCENDING)], name="user_n"),
        # A retried upload request finds its first attempt's job by its key.
        IndexModel(
            [("userId", ASCENDING), ("idempotencyKey", ASCENDING)],
            name="user_idempotency_key",
            unique=True,
            partialFilterExpression={"idempotencyKey": {"$type": "string"}},
        ),
        # The clock looks for jobs whose receiver died (across users, on purpose).
        IndexModel([("status", ASCENDING), ("heartbeatAt", ASCENDING)], name="status_heartbeat"),
    ),
    "upload_chunks": (
        IndexModel([("userId", ASCENDING), ("uploadId", ASCENDING)], name="user_upload"),
    ),
    "counters": (IndexModel([("kind", ASCENDING), ("countedAt", ASCENDING)], name="tallies"),),
    # An entry's _id is a hash of (user, address): unique per address, read by _id.
    "suppressions": (IndexModel([("userId", ASCENDING), ("n", ASCENDING)], name="user_n"),),
    "upload_errors": (
        IndexModel(
            [("userId", ASCENDING), ("uploadId", ASCENDING), ("line", ASCENDING)],
            name="user_upload_line",
        ),
    ),
}


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]], spec: IndexSpec = INDEXES) -> int:
    """Create every declared index that does not exist yet; returns how many were asked
    for. ``create_indexes`` leaves existing identical indexes alone, so this is safe on
    every start and from several processes at once."""
    total = 0
    for collection, models in spec.items():
        if models:
            names = await db[collection].create_indexes(list(models))
            total += len(names)
            log.debug("store.indexes", collection=collection, indexes=names)
    return total
