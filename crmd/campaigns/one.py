"""One message to one customer, through the campaigns' own sending.

A message that is not part of a campaign (a flow's send step, a message posted to
``/api/v1/messages``) is sent as a recipient of a campaign document of its own kind
(``flow``: one per send step of a flow's version; ``message``: one per tenant, subject,
text, vendor and kind). That document holds the templates and the vendor, and it stays
``sending``: never planned, never listed, never completed. The message is written as
its log, PENDING with no vendor id, and handed to the dispatch stream as a send job
naming it, so suppression, the frequency cap, the vendor's rate, retries, receipts,
outcomes, unsubscribe links and stats are the campaigns' own.

Safe to repeat: the campaign's id is derived from what it is, and the log's from the
campaign and the key of the send, so a step run again writes nothing new and its send
job finds the message handed over already.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from redis.asyncio import Redis

from crmd.campaigns import chunks, compose, jobs
from crmd.campaigns.lifecycle import Status
from crmd.messages import MessageStatus, message_id
from crmd.store.documents import Doc
from crmd.store.tenant import TenantStore
from crmd.suppressions.links import UnsubscribeLinks


def derived_id(*parts: str) -> ObjectId:
    """An ObjectId that is the same for the same parts: creating it twice is one write."""
    return ObjectId(hashlib.sha256("\x00".join(parts).encode()).digest()[:12])


async def message_campaign(
    store: TenantStore,
    campaign_id: ObjectId,
    *,
    kind: str,
    name: str,
    message: str,
    subject: str,
    html: str,
    vendor: str,
    transactional: bool = False,
    extra: Doc | None = None,
) -> None:
    """Make sure the campaign document the messages of one send belong to exists."""
    now = datetime.now(UTC)
    fields: Doc = {
        "n": 0,  # not numbered: no list shows it
        "kind": kind,
        "name": name[:200],
        "message": message,
        "subject": subject,
        "html": html,
        "intent": "",
        "rule": "",
        "vendor": vendor,
        "ruleNow": now,
        "audienceSize": 0,
        "status": Status.SENDING.value,
        "transactional": transactional,
        "createdAt": now,
        "updatedAt": now,
        **(extra or {}),
    }
    await store["campaigns"].update_one({"_id": campaign_id}, {"$setOnInsert": fields}, upsert=True)


def log_of(
    store: TenantStore,
    campaign: Doc,
    customer: Doc,
    key: str,
    links: UnsubscribeLinks | None,
) -> Doc:
    """The PENDING log of ``customer``'s message from ``campaign`` (its templates), its
    id from the campaign and ``key`` (the customer's id for the first message of a
    kind: then the id is the one attribution looks for)."""
    campaign_id = str(campaign["_id"])
    templates = compose.templates_for(campaign["message"], campaign["subject"], campaign["html"])
    email = str(customer.get("email") or "")
    entry: Doc = {
        "_id": message_id(campaign_id, key),
        "seq": 0,
        "customerId": str(customer["_id"]),
        "recipient": email,
        "phone": str(customer.get("phone") or ""),
    }
    url = compose.unsubscribe_url(links, store.user_id, campaign_id, entry["customerId"], email)
    entry["message"] = compose.text_for(templates, customer, url)
    values = compose.values_for(templates, customer)
    if values:
        entry["values"] = values
    return entry


async def queue(
    store: TenantStore,
    redis: Redis,
    dispatch: str,
    campaign: Doc,
    entries: list[Doc],
) -> list[str]:
    """Write the messages' logs (those not written already) and queue their send job;
    the ids of the messages queued (all of them: a message written before is queued
    again, and the sender skips it if it was handed over)."""
    if not entries:
        return []
    now = datetime.now(UTC)
    campaign_id = str(campaign["_id"])
    logs = [
        chunks.new_log(e, campaign_id, campaign["vendor"], MessageStatus.PENDING, 0, now)
        for e in entries
    ]
    new, _ = await chunks.insert_logs(store, logs)
    await store.add_to_tally("messages", new)
    ids = [e["_id"] for e in entries]
    job = jobs.DispatchJob("send", campaign_id, store.user_id, ids=ids)
    await jobs.publish(redis, dispatch, [job])
    return ids


def customer_values(customer: Doc) -> dict[str, Any]:
    """A customer document as templates read it (its id as text)."""
    return {**customer, "_id": str(customer["_id"])}
