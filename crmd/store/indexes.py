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
    # Workspaces (crmd.workspaces): a membership's _id is <workspace>:<user>; a person's
    # workspaces are found by userId. A key is found by its hash, on every request.
    "memberships": (
        IndexModel([("userId", ASCENDING), ("joinedAt", ASCENDING)], name="user_joined"),
        IndexModel([("workspaceId", ASCENDING), ("joinedAt", ASCENDING)], name="workspace"),
    ),
    "api_keys": (
        IndexModel([("hash", ASCENDING)], unique=True, name="hash_unique"),
        IndexModel([("userId", ASCENDING), ("createdAt", ASCENDING)], name="user_created"),
    ),
    # The audit log is read newest first; the retention pass deletes by time alone.
    "audit": (
        IndexModel([("userId", ASCENDING), ("at", ASCENDING)], name="user_at"),
        IndexModel([("at", ASCENDING)], name="retention"),
    ),
    # An invitation is found by its id (from its link), a workspace's by workspaceId.
    "invitations": (
        IndexModel([("workspaceId", ASCENDING), ("createdAt", ASCENDING)], name="workspace"),
        IndexModel([("email", ASCENDING), ("createdAt", ASCENDING)], name="email_created"),
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
    "campaigns": (
        IndexModel([("userId", ASCENDING), ("n", ASCENDING)], name="user_n"),
        # A flow's send steps' campaigns, summed for its counts; only those have a flowId.
        IndexModel(
            [("userId", ASCENDING), ("flowId", ASCENDING)],
            name="user_flow",
            partialFilterExpression={"flowId": {"$exists": True}},
        ),
    ),
    # Flows (crmd.flows): pages are ranges of n; the engine finds the active flows an
    # input concerns by their triggerKey. A version is read by its _id, <flow>:<n>.
    "flows": (
        IndexModel([("userId", ASCENDING), ("n", ASCENDING)], name="user_n"),
        IndexModel(
            [("userId", ASCENDING), ("status", ASCENDING), ("triggerKey", ASCENDING)],
            name="user_status_trigger",
        ),
    ),
    "flow_steps": (
        IndexModel(
            [
                ("userId", ASCENDING),
                ("flowId", ASCENDING),
                ("version", ASCENDING),
                ("path", ASCENDING),
            ],
            name="user_flow_version_path",
        ),
    ),
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
        # A customer's page lists the messages sent to it (crmd.customers.service).
        IndexModel([("userId", ASCENDING), ("customerId", ASCENDING)], name="user_customer"),
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
    # One document per attributed order (its _id the order's): summed per campaign.
    "attributions": (
        IndexModel([("userId", ASCENDING), ("campaignId", ASCENDING)], name="user_campaign"),
    ),
    # A customer's place in a flow: found by customer (events, goals, their page), by
    # flow (its page's counts), and by the clock across tenants, by due time.
    "flow_states": (
        IndexModel(
            [("userId", ASCENDING), ("customerId", ASCENDING), ("status", ASCENDING)],
            name="user_customer_status",
        ),
        IndexModel(
            [("userId", ASCENDING), ("flowId", ASCENDING), ("status", ASCENDING)],
            name="user_flow_status",
        ),
        # The clock's due timers and stranded states, across users on purpose.
        IndexModel([("status", ASCENDING), ("dueAt", ASCENDING)], name="status_due"),
        IndexModel([("status", ASCENDING), ("updatedAt", ASCENDING)], name="status_updated"),
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
    # An event's _id is a hash of (user, event id): stored once per id without an index.
    # A customer's events are read newest first; the retention pass (across users, on
    # purpose) takes the oldest.
    "events": (
        IndexModel(
            [("userId", ASCENDING), ("customerId", ASCENDING), ("timestamp", ASCENDING)],
            name="user_customer_timestamp",
        ),
        IndexModel([("timestamp", ASCENDING)], name="retention"),
    ),
    "upload_chunks": (
        IndexModel([("userId", ASCENDING), ("uploadId", ASCENDING)], name="user_upload"),
    ),
    # Claims on Idempotency-Keys (crmd.http.idempotency), read by _id, gone after a day.
    "idempotency_keys": (
        IndexModel([("expiresAt", ASCENDING)], name="expiry", expireAfterSeconds=0),
    ),
    "counters": (IndexModel([("kind", ASCENDING), ("countedAt", ASCENDING)], name="tallies"),),
    # An entry's _id is a hash of (user, address): unique per address, read by _id.
    "suppressions": (IndexModel([("userId", ASCENDING), ("n", ASCENDING)], name="user_n"),),
    # A tenant's webhooks are few (``[webhooks] max_per_tenant``): read by userId alone.
    "webhooks": (
        IndexModel([("userId", ASCENDING), ("createdAt", ASCENDING)], name="user_created"),
    ),
    # The clock finds due attempts across tenants (on purpose); a webhook's log is paged
    # newest first.
    "webhook_deliveries": (
        IndexModel([("status", ASCENDING), ("nextAt", ASCENDING)], name="status_next"),
        IndexModel(
            [("userId", ASCENDING), ("webhookId", ASCENDING), ("createdAt", ASCENDING)],
            name="user_webhook_created",
        ),
    ),
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
