"""Campaigns over HTTP: parse, call the service, answer. Reads never write."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from crmd.auth.requests import tenant_store
from crmd.campaigns import stats
from crmd.campaigns.lifecycle import operator_actions
from crmd.campaigns.service import CampaignBody
from crmd.errors import BadRequest
from crmd.http.admission import asked_for, expensive_when
from crmd.http.bodies import Body, json_body
from crmd.http.describe import Link, Moment, described
from crmd.http.keys import CAMPAIGNS
from crmd.http.pages import (
    DEFAULT_LIMIT,
    Limit,
    PageQuery,
    before_cursor,
    choice,
    newest_page,
    read_page,
)
from crmd.http.responses import json_response
from crmd.store.numbering import BY_STATUS, tally
from crmd.store.windows import oldest

routes = web.RouteTableDef()
LOG_STATUSES = (
    "PENDING",
    "SENT",
    "DELIVERED",
    "OPENED",
    "CLICKED",
    "FAILED",
    "BOUNCED",
    "UNKNOWN",
    "CANCELLED",
    "SUPPRESSED",
)


class TestSend(Body):
    email: Annotated[
        str, msgspec.Meta(min_length=3, max_length=254, examples=["someone@example.com"])
    ]


CampaignStatus = Literal[
    "draft", "scheduled", "queued", "planning", "sending", "sent", "completed", "paused",
    "cancelled", "error",
]  # fmt: skip
LogStatus = Literal[LOG_STATUSES]  # type: ignore[valid-type]


class CampaignStats(msgspec.Struct):
    """The recipients by where their message is (delivered counts opened and clicked;
    failed counts bounced)."""

    pending: int
    sent: int
    delivered: int
    failed: int
    unknown: int
    cancelled: int
    suppressed: int = 0
    """On the suppression list when the campaign was planned: not sent to."""


class Campaign(msgspec.Struct):
    id: str
    name: str
    message: str
    subject: str
    html: str
    intent: str
    rule: str
    segmentId: str | None
    vendor: str
    status: CampaignStatus
    audienceSize: int
    stats: CampaignStats
    deliveryRate: float
    actions: list[Literal["send", "pause", "resume", "cancel", "retry_failed"]]
    """What an operator may do now (``POST /campaigns/{id}/<action>``, retry_failed
    being ``retry-failed``)."""
    createdAt: Moment
    scheduledAt: Moment | None
    sentAt: Moment | None
    completedAt: Moment | None
    reason: str | UnsetType = UNSET
    """Why it ended in ``error`` (or was refused)."""


class RetriedCampaign(Campaign):
    retried: int = 0
    """Failed messages set to be sent again."""
    queued: int = 0
    """Messages queued to be sent (a chunk counts whole)."""


class CampaignList(msgspec.Struct):
    items: list[Campaign]
    total: int
    cursor: str | None
    """Pass it back as ``cursor`` for the next page; null on the last."""


class CampaignListQuery(PageQuery):
    cursor: Annotated[str, msgspec.Meta(pattern="^[0-9]{1,15}$")] | None = None


class LogEntry(msgspec.Struct):
    id: str
    customerId: str
    message: str
    status: LogStatus
    vendorMessageId: str | None
    reason: str | None
    updatedAt: Moment


class LogPage(msgspec.Struct):
    items: list[LogEntry]
    total: int
    cursor: str | None


class LogQuery(msgspec.Struct):
    limit: Limit = DEFAULT_LIMIT
    status: LogStatus | None = None
    """Only the recipients whose message is in this state (any case)."""
    cursor: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,15}(\.[0-9]{1,15})?$")] | None = None


class TestSent(msgspec.Struct):
    message: str
    """The message as rendered for that address."""
    vendor: str
    accepted: bool
    vendorMessageId: str | None
    reason: str | None


class Dashboard(msgspec.Struct):
    customers: int
    orders: int
    campaigns: int
    messages: dict[str, int]
    """Messages by log status."""


CAMPAIGN_LINKS = {
    "get": Link("get_campaign", {"id": "$response.body#/id"}),
    "logs": Link("campaign_logs", {"id": "$response.body#/id"}),
    "pause": Link("pause", {"id": "$response.body#/id"}),
    "cancel": Link("cancel", {"id": "$response.body#/id"}),
}


def campaign(doc: dict[str, Any]) -> Campaign:
    return msgspec.convert(campaign_view(doc), Campaign)


def campaign_view(doc: dict[str, Any]) -> dict[str, Any]:
    counted = doc.get("stats", {})
    view = {
        "id": str(doc["_id"]),
        "name": doc["name"],
        "message": doc["message"],
        "subject": doc.get("subject", ""),
        "html": doc.get("html", ""),
        "intent": doc.get("intent", ""),
        "rule": doc["rule"],
        "segmentId": doc.get("segmentId"),
        "vendor": doc["vendor"],
        "status": doc["status"],
        "audienceSize": doc["audienceSize"],
        "stats": {k: counted.get(k, 0) for k in stats.GROUPS},
        "deliveryRate": stats.delivery_rate(counted, doc["audienceSize"]),
        "actions": operator_actions(
            doc["status"], doc.get("plannedAt") is not None, failed=counted.get("failed", 0)
        ),
        "createdAt": doc["createdAt"],
        "scheduledAt": doc.get("scheduledAt"),
        "sentAt": doc.get("sentAt"),
        "completedAt": doc.get("completedAt"),
    }
    if doc.get("reason"):
        view["reason"] = doc["reason"]
    return view


@routes.post("/api/v1/campaigns")
@described(
    "Create a campaign (sent at once, at scheduledAt, or kept as a draft)",
    tag="campaigns",
    body=CampaignBody,
    ok={201: Campaign},
    errors=(404,),
    links=CAMPAIGN_LINKS,
)
async def create_campaign(request: web.Request) -> web.Response:
    body = await json_body(request, CampaignBody)
    doc = await request.app[CAMPAIGNS].create(tenant_store(request), body)
    return json_response(campaign(doc), status=201)


@routes.get("/api/v1/campaigns")
@described(
    "List campaigns, newest first",
    tag="campaigns",
    ok=CampaignList,
    query=CampaignListQuery,
)
async def list_campaigns(request: web.Request) -> web.Response:
    """A range of the newest campaigns and the tally: no sort of the collection, no
    count."""
    page = read_page(request, keyset=False)
    store = tenant_store(request)
    docs, cursor, total = await newest_page(store, "campaigns", page, before_cursor(request))
    return json_response(CampaignList([campaign(doc) for doc in docs], total, cursor))


@routes.get("/api/v1/campaigns/{id}")
@described("A campaign, with its counts and the actions allowed now", tag="campaigns", ok=Campaign)
async def get_campaign(request: web.Request) -> web.Response:
    doc = await tenant_store(request)["campaigns"].get(request.match_info["id"], "campaign")
    return json_response(campaign(doc))


@routes.get("/api/v1/campaigns/{id}/logs")
@described(
    "A campaign's recipients and their messages", tag="campaigns", ok=LogPage, query=LogQuery
)
@expensive_when(asked_for("status"))
async def campaign_logs(request: web.Request) -> web.Response:
    """The recipients in the order they were planned, a page at the cost of a page: a
    range of their places (``seq``). A status filter is applied to what a range brought
    (at most 2,000 read a page), and its total counted on the first page and carried."""
    store = tenant_store(request)
    doc = await store["campaigns"].get(request.match_info["id"], "campaign")
    page = read_page(request, keyset=False)
    status = choice(request, "status", LOG_STATUSES, upper=True)
    after, carried = _log_cursor(request)
    logs = store["communication_log"]
    where: dict[str, Any] = {"campaignId": str(doc["_id"])}
    top = int(doc.get("lastSeq") or doc.get("planSeq") or 0)  # (planned so far)
    window = await oldest(
        logs,
        top,
        after=after,
        limit=page.limit,
        where=where,
        keep=(lambda d: d["status"] == status) if status else None,
        number="seq",
    )
    if not status:
        total = int(doc["audienceSize"]) if doc.get("plannedAt") else top
    elif carried is None:
        total = await logs.count_documents({**where, "status": status})
    else:
        total = carried
    following = window.next_before
    items = [
        LogEntry(
            id=d["_id"],
            customerId=d["customerId"],
            message=d["message"],
            status=d["status"],
            vendorMessageId=d.get("vendorMessageId"),
            reason=d.get("reason"),
            updatedAt=d["updatedAt"],
        )
        for d in window.items
    ]
    cursor = None if following is None else f"{following}.{total}"
    return json_response(LogPage(items, total, cursor))


def _log_cursor(request: web.Request) -> tuple[int, int | None]:
    raw = request.query.get("cursor")
    if not raw:
        return 0, None
    seq, _, total = raw.partition(".")
    if not re.fullmatch(r"[0-9]{1,15}", seq) or (total and not re.fullmatch(r"[0-9]{1,15}", total)):
        raise BadRequest("cursor is not one this server gave out", details={"field": "cursor"})
    return int(seq), int(total) if total else None


@routes.post("/api/v1/campaigns/{id}/send")
@described("Send a draft now", tag="campaigns", ok=Campaign, errors=(409,))
async def send_draft(request: web.Request) -> web.Response:
    doc = await request.app[CAMPAIGNS].send(tenant_store(request), request.match_info["id"])
    return json_response(campaign(doc))


@routes.post("/api/v1/campaigns/{id}/pause")
@described("Pause sending", tag="campaigns", ok=Campaign, errors=(409,))
async def pause(request: web.Request) -> web.Response:
    doc = await request.app[CAMPAIGNS].pause(tenant_store(request), request.match_info["id"])
    return json_response(campaign(doc))


@routes.post("/api/v1/campaigns/{id}/resume")
@described("Resume a paused campaign", tag="campaigns", ok=Campaign, errors=(409,))
async def resume(request: web.Request) -> web.Response:
    doc = await request.app[CAMPAIGNS].resume(tenant_store(request), request.match_info["id"])
    return json_response(campaign(doc))


@routes.post("/api/v1/campaigns/{id}/cancel")
@described("Cancel: nothing more is sent", tag="campaigns", ok=Campaign, errors=(409,))
async def cancel(request: web.Request) -> web.Response:
    doc = await request.app[CAMPAIGNS].cancel(tenant_store(request), request.match_info["id"])
    return json_response(campaign(doc))


@routes.post("/api/v1/campaigns/{id}/retry-failed")
@described("Send the failed messages again", tag="campaigns", ok=RetriedCampaign, errors=(409,))
async def retry_failed(request: web.Request) -> web.Response:
    doc, retried, queued = await request.app[CAMPAIGNS].retry_failed(
        tenant_store(request), request.match_info["id"]
    )
    view = {**campaign_view(doc), "retried": retried, "queued": queued}
    return json_response(msgspec.convert(view, RetriedCampaign))


@routes.post("/api/v1/campaigns/{id}/test")
@described(
    "Send the campaign's message to one address (no log, no counts)",
    tag="campaigns",
    body=TestSend,
    ok=TestSent,
)
async def test_send(request: web.Request) -> web.Response:
    body = await json_body(request, TestSend)
    answer = await request.app[CAMPAIGNS].test_send(
        tenant_store(request), request.match_info["id"], body.email
    )
    return json_response(msgspec.convert(answer, TestSent))


@routes.get("/api/v1/dashboard-summary")
@described("How many customers, orders, campaigns and messages", tag="campaigns", ok=Dashboard)
async def dashboard(request: web.Request) -> web.Response:
    """One read: the user's tallies (``crmd.store.numbering``), kept as records arrive
    and as campaigns' stats move, never a count."""
    store = tenant_store(request)
    counted = await tally(store.db, store.user_id)
    return json_response(
        Dashboard(
            customers=counted["customers"],
            orders=counted["orders"],
            campaigns=counted["campaigns"],
            messages=counted[BY_STATUS],
        )
    )
