"""``POST /api/v1/messages``: one templated message to one customer, now.

An order confirmation, a password mail, a note an operator's system sends: it goes
through the campaigns' own hand-over (``crmd.campaigns.one``), so its receipts, outcomes,
unsubscribe link and suppression are a campaign message's. The messages posted with
the same subject, text, HTML, vendor and kind share one hidden campaign document
(kind ``message``), whose stats are theirs.

``kind``:

- ``marketing`` (the default): capped by ``[flows] max_messages_per_customer_per_day``
  and never sent to an address on the suppression list;
- ``transactional``: not capped, and sent to an address on the list unless it is there
  because it bounced, complained or was refused for good: an unsubscribe stops
  marketing, not a receipt for a purchase.

An ``Idempotency-Key`` makes the message's id: a retried POST with the same key answers
the same message and sends nothing more. Without one, each POST is a new message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from redis.asyncio import Redis

from crmd.auth.requests import tenant_store
from crmd.campaigns import one as send
from crmd.campaigns.compose import parse_html, parse_subject
from crmd.campaigns.experiments import InvalidTemplate
from crmd.campaigns.template import TemplateError, parse_template
from crmd.campaigns.vendors import Vendors
from crmd.errors import Unprocessable
from crmd.http.bodies import json_body, raw_body
from crmd.http.describe import described
from crmd.http.idempotency import Claim, IdempotencyHeaders, idempotency_key, run_once
from crmd.http.schema import Body
from crmd.store.documents import Doc
from crmd.store.tenant import TenantStore
from crmd.suppressions.links import UnsubscribeLinks

routes = web.RouteTableDef()


class MessageBody(Body, kw_only=True):
    customer: Annotated[str, msgspec.Meta(min_length=1, max_length=320, examples=["C1"])]
    """The customer's external id, e-mail or crmd id, looked up in that order."""
    message: Annotated[
        str,
        msgspec.Meta(min_length=1, max_length=1000, examples=["Your order {name} is on its way"]),
    ]
    subject: Annotated[str, msgspec.Meta(max_length=200)] = ""
    html: Annotated[str, msgspec.Meta(max_length=50_000)] = ""
    vendor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    kind: Literal["transactional", "marketing"] = "marketing"


class Queued(msgspec.Struct):
    id: str
    """The message's id: its log at ``GET /api/v1/campaigns/{campaignId}/logs``."""
    campaignId: str
    customerId: str
    kind: str
    status: str = "queued"


@dataclass(frozen=True)
class Messages:
    redis: Redis
    dispatch: str
    vendors: Vendors
    links: UnsubscribeLinks | None

    async def post(self, store: TenantStore, body: MessageBody, key: str) -> Queued:
        for field, text, parse in (
            ("message", body.message, parse_template),
            ("subject", body.subject, parse_subject),
            ("html", body.html, parse_html),
        ):
            if not text:
                continue
            try:
                parse(text)
            except TemplateError as exc:
                raise InvalidTemplate(exc, field) from exc
        vendor = self.vendors.get(body.vendor).name
        customer = await find_customer(store, body.customer)
        transactional = body.kind == "transactional"
        campaign_id = send.derived_id(
            store.user_id, "message", body.kind, vendor, body.subject, body.message, body.html
        )
        await send.message_campaign(
            store,
            campaign_id,
            kind="message",
            name=f"{body.kind} messages: {body.subject or body.message}"[:200],
            message=body.message,
            subject=body.subject,
            html=body.html,
            vendor=vendor,
            transactional=transactional,
        )
        campaign = await store["campaigns"].find_one({"_id": campaign_id})
        assert campaign is not None
        # The key names the message across templates: the same key is the same message.
        message_key = f"key:{key}"
        entry = send.log_of(store, campaign, customer, message_key, self.links)
        handed = await store["communication_log"].find_one(
            {"_id": entry["_id"], "vendorMessageId": {"$ne": None}}, projection={"_id": 1}
        )
        if handed is None:  # new, or written by a request that died before its job
            await send.queue(store, self.redis, self.dispatch, campaign, [entry])
        return Queued(entry["_id"], str(campaign_id), str(customer["_id"]), body.kind)


async def find_customer(store: TenantStore, reference: str) -> Doc:
    """The customer ``reference`` names: an external id, else an e-mail, else crmd's id
    (customers' ids are text), within the tenant; 422 naming ``customer`` when none."""
    customers = store["customers"]
    for field in ("customer_external_id", "email", "_id"):
        value = reference.strip().lower() if field == "email" else reference
        found = await customers.find_one({field: value})
        if found is not None:
            return send.customer_values(found)
    raise Unprocessable(
        f"no customer {reference!r}: give their external id, e-mail or crmd id",
        code="unknown_customer",
        details={"field": "customer"},
    )


MESSAGES: web.AppKey[Messages] = web.AppKey("messages")


@routes.post("/api/v1/messages")
@described(
    "Send one templated message to one customer now",
    tag="messages",
    body=MessageBody,
    headers=IdempotencyHeaders,
    ok={202: Queued},
)
async def post_message(request: web.Request) -> web.Response:
    """Queued at once; its log shows what happened to it, as a campaign message's does.
    With an ``Idempotency-Key``, a retry with the same body answers the first answer
    and sends nothing more; the key with another body is 422 ``idempotency_key_reused``
    (``crmd.http.idempotency``)."""
    store = tenant_store(request)
    raw = await raw_body(request)
    key = idempotency_key(request)

    async def work(claim: Claim) -> tuple[int, Queued]:
        body = await json_body(request, MessageBody)
        # A retry that takes over a dead request's claim sends the same message.
        named = key if key is not None else str(claim.work_id)
        return 202, await request.app[MESSAGES].post(store, body, named)

    return await run_once(request, store, raw, Queued, work)
