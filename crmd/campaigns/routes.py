"""Campaigns over HTTP: parse, call the service, answer. Reads never write."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from aiohttp import web
from pymongo import DESCENDING

from crmd.auth.requests import tenant_store
from crmd.campaigns import stats
from crmd.campaigns.lifecycle import operator_actions
from crmd.campaigns.service import CampaignBody
from crmd.errors import BadRequest
from crmd.http.bodies import json_body
from crmd.http.keys import CAMPAIGNS
from crmd.http.pages import choice, offset_cursor, read_page
from crmd.http.responses import json_response
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
)


class TestSend(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]


def campaign_view(doc: dict[str, Any]) -> dict[str, Any]:
    counted = doc.get("stats", {})
    view = {
        "id": str(doc["_id"]),
        "name": doc["name"],
        "message": doc["message"],
        "intent": doc.get("intent", ""),
        "rule": doc["rule"],
        "segmentId": doc.get("segmentId"),
        "vendor": doc["vendor"],
        "status": doc["status"],
        "audienceSize": doc["audienceSize"],
        "stats": {k: counted.get(k, 0) for k in stats.GROUPS},
        "deliveryRate": stats.delivery_rate(counted, doc["audienceSize"]),
        "actions": operator_actions(doc["status"], doc.get("plannedAt") is not None),
        "createdAt": doc["createdAt"],
        "scheduledAt": doc.get("scheduledAt"),
        "sentAt": doc.get("sentAt"),
        "completedAt": doc.get("completedAt"),
    }
    if doc.get("reason"):
        view["reason"] = doc["reason"]
    return view


@routes.post("/api/v1/campaigns")
async def create_campaign(request: web.Request) -> web.Response:
    body = await json_body(request, CampaignBody)
    doc = await request.app[CAMPAIGNS].create(tenant_store(request), body)
    return json_response(campaign_view(doc), status=201)


@routes.get("/api/v1/campaigns")
async def list_campaigns(request: web.Request) -> web.Response:
    page = read_page(request, keyset=False)
    offset = offset_cursor(request, page.offset)
    campaigns = tenant_store(request)["campaigns"]
    cursor = campaigns.find(
        {},
        sort=[("createdAt", DESCENDING), ("_id", DESCENDING)],
        skip=offset,
        limit=page.limit,
    )
    items = [campaign_view(doc) async for doc in cursor]
    total = await campaigns.count_documents()
    more = offset + len(items) < total
    return json_response(
        {"items": items, "total": total, "cursor": str(offset + len(items)) if more else None}
    )


@routes.get("/api/v1/campaigns/{id}")
async def get_campaign(request: web.Request) -> web.Response:
    doc = await tenant_store(request)["campaigns"].get(request.match_info["id"], "campaign")
    return json_response(campaign_view(doc))


@routes.get("/api/v1/campaigns/{id}/logs")
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
    return json_response(
        {
            "items": [
                {
                    "id": d["_id"],
                    "customerId": d["customerId"],
                    "message": d["message"],
                    "status": d["status"],
                    "vendorMessageId": d.get("vendorMessageId"),
                    "reason": d.get("reason"),
                    "updatedAt": d["updatedAt"],
                }
                for d in window.items
            ],
            "total": total,
            "cursor": None if following is None else f"{following}.{total}",
        }
    )


def _log_cursor(request: web.Request) -> tuple[int, int | None]:
    raw = request.query.get("cursor")
    if not raw:
        return 0, None
    seq, _, total = raw.partition(".")
    if not re.fullmatch(r"[0-9]{1,15}", seq) or (total and not re.fullmatch(r"[0-9]{1,15}", total)):
        raise BadRequest("cursor is not one this server gave out", details={"field": "cursor"})
    return int(seq), int(total) if total else None


@routes.post("/api/v1/campaigns/{id}/send")
async def send_draft(request: web.Request) -> web.Response:
    doc = await request.app[CAMPAIGNS].send(tenant_store(request), request.match_info["id"])
    return json_response(campaign_view(doc))


@routes.post("/api/v1/campaigns/{id}/pause")
async def pause(request: web.Request) -> web.Response:
    doc = await request.app[CAMPAIGNS].pause(tenant_store(request), request.match_info["id"])
    return json_response(campaign_view(doc))


@routes.post("/api/v1/campaigns/{id}/resume")
async def resume(request: web.Request) -> web.Response:
    doc = await request.app[CAMPAIGNS].resume(tenant_store(request), request.match_info["id"])
    return json_response(campaign_view(doc))


@routes.post("/api/v1/campaigns/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    doc = await request.app[CAMPAIGNS].cancel(tenant_store(request), request.match_info["id"])
    return json_response(campaign_view(doc))


@routes.post("/api/v1/campaigns/{id}/retry-failed")
async def retry_failed(request: web.Request) -> web.Response:
    doc, retried, queued = await request.app[CAMPAIGNS].retry_failed(
        tenant_store(request), request.match_info["id"]
    )
    return json_response({**campaign_view(doc), "retried": retried, "queued": queued})


@routes.post("/api/v1/campaigns/{id}/test")
async def test_send(request: web.Request) -> web.Response:
    body = await json_body(request, TestSend)
    answer = await request.app[CAMPAIGNS].test_send(
        tenant_store(request), request.match_info["id"], body.email
    )
    return json_response(answer)


@routes.get("/api/v1/dashboard-summary")
async def dashboard(request: web.Request) -> web.Response:
    store = tenant_store(request)
    cursor = await store["communication_log"].aggregate(
        [{"$group": {"_id": "$status", "n": {"$sum": 1}}}]
    )
    messages = {d["_id"]: d["n"] async for d in cursor}
    return json_response(
        {
            "customers": await store["customers"].count_documents(),
            "orders": await store["orders"].count_documents(),
            "campaigns": await store["campaigns"].count_documents(),
            "messages": messages,
        }
    )
