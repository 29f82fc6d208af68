"""Campaigns over HTTP: parse, call the service, answer. Reads never write."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.campaigns.engagement import LogActivity
from crmd.campaigns.schema import (
    Campaign,
    CampaignBody,
    CampaignList,
    Dashboard,
    LogEntry,
    LogPage,
    LogStatus,
    RetriedCampaign,
    TestSend,
    TestSent,
)
from crmd.campaigns.service import campaign_by_id, campaign_view
from crmd.errors import BadRequest
from crmd.http.admission import asked_for, expensive_when
from crmd.http.bodies import json_body
from crmd.http.describe import Link, described
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
from crmd.messages import LOG_STATUSES
from crmd.store import documents
from crmd.store.numbering import BY_STATUS
from crmd.store.windows import oldest

routes = web.RouteTableDef()


class CampaignListQuery(PageQuery):
    cursor: Annotated[str, msgspec.Meta(pattern="^[0-9]{1,15}$")] | None = None


class LogQuery(msgspec.Struct):
    limit: Limit = DEFAULT_LIMIT
    status: LogStatus | None = None
    """Only the recipients whose message is in this state (any case)."""
    cursor: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,15}(\.[0-9]{1,15})?$")] | None = None


CAMPAIGN_LINKS = {
    "get": Link("get_campaign", {"id": "$response.body#/id"}),
    "logs": Link("campaign_logs", {"id": "$response.body#/id"}),
    "pause": Link("pause", {"id": "$response.body#/id"}),
    "cancel": Link("cancel", {"id": "$response.body#/id"}),
}


def campaign(doc: documents.Campaign) -> Campaign:
    return msgspec.convert(campaign_view(doc), Campaign)


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
    found = documents.decode_all(docs, documents.Campaign)
    return json_response(CampaignList([campaign(doc) for doc in found], total, cursor))


@routes.get("/api/v1/campaigns/{id}")
@described("A campaign, with its counts and the actions allowed now", tag="campaigns", ok=Campaign)
async def get_campaign(request: web.Request) -> web.Response:
    doc = await campaign_by_id(tenant_store(request), request.match_info["id"])
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
    doc = await campaign_by_id(store, request.match_info["id"])
    page = read_page(request, keyset=False)
    status = choice(request, "status", LOG_STATUSES, upper=True)
    after, carried = _log_cursor(request)
    logs = store["communication_log"]
    where: dict[str, Any] = {"campaignId": str(doc.id)}
    top = doc.lastSeq or doc.planSeq  # (planned so far)
    window = await oldest(
        logs,
        top,
        after=after,
        limit=page.limit,
        where=where,
        keep=(lambda d: d["status"] == status) if status else None,
        projection=documents.projection(LogActivity),
        number="seq",
    )
    if not status:
        total = doc.audienceSize if doc.plannedAt else top
    elif carried is None:
        total = await logs.count_documents({**where, "status": status})
    else:
        total = carried
    following = window.next_before
    items = [
        LogEntry(
            id=line.id,
            customerId=line.customerId,
            message=line.message,
            status=line.status,
            vendorMessageId=line.vendorMessageId,
            reason=line.reason,
            updatedAt=line.updatedAt,
            times=line.times,
            opens=line.opens,
            machineOpens=line.machineOpens,
            clicks=line.clicks,
        )
        for line in documents.decode_all(window.items, LogActivity)
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
        tenant_store(request), request.match_info["id"], body.email, body.variant
    )
    return json_response(msgspec.convert(answer, TestSent))


@routes.get("/api/v1/dashboard-summary")
@described("How many customers, orders, campaigns and messages", tag="campaigns", ok=Dashboard)
async def dashboard(request: web.Request) -> web.Response:
    """One read: the user's tallies (``crmd.store.numbering``), kept as records arrive
    and as campaigns' stats move, never a count."""
    store = tenant_store(request)
    counted = await store.tally()
    return json_response(
        Dashboard(
            customers=counted["customers"],
            orders=counted["orders"],
            campaigns=counted["campaigns"],
            messages=counted[BY_STATUS],
        )
    )
