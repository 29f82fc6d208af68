"""Campaigns over HTTP: create, read, control, and their per-recipient logs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web
from bson import ObjectId
from pymongo import DESCENDING

from crmd.auth.middleware import current_user, tenant_store
from crmd.campaigns import jobs, stats
from crmd.campaigns.dispatch import mark_sent_if_done
from crmd.campaigns.template import TemplateError, parse_template, render
from crmd.campaigns.vendors import guarded_send
from crmd.errors import Conflict, CrmdError, Unprocessable
from crmd.http.bodies import json_body
from crmd.http.keys import RUNTIME
from crmd.http.pages import read_page
from crmd.http.responses import json_response
from crmd.plugins.vendor import Accepted, OutgoingMessage
from crmd.segments.query import rule_filter, rule_now
from crmd.store.tenant import TenantStore

routes = web.RouteTableDef()
Text = Annotated[str, msgspec.Meta(max_length=200)]


class InvalidTemplate(CrmdError):
    status, code = 422, "invalid_template"

    def __init__(self, error: TemplateError) -> None:
        super().__init__(error.message, details={"field": "message", "column": error.column})


class CampaignBody(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    intent: Text = ""
    rule: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    segmentId: str | None = None
    vendor: Text | None = None
    scheduledAt: datetime | None = None
    draft: bool = False
    """Save without sending; ``POST /campaigns/{id}/send`` sends it later."""


class OriginalCampaign(msgspec.Struct):
    compaignDetails: CampaignBody


class TestSend(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]


async def create(request: web.Request, body: CampaignBody) -> web.Response:
    runtime = request.app[RUNTIME]
    store = tenant_store(request)
    try:
        parse_template(body.message)
    except TemplateError as exc:
        raise InvalidTemplate(exc) from None
    rule = body.rule
    if body.segmentId:
        rule = (await store["segments"].get(body.segmentId, "segment"))["rule"]
    if not rule:
        raise Unprocessable("a campaign needs a rule or a segmentId", code="missing_audience",
                            details={"field": "rule"})  # fmt: skip
    now = rule_now()
    audience = await store["customers"].count_documents(rule_filter(rule, now))
    vendor = runtime.vendors.get(body.vendor).name
    scheduled_at = body.scheduledAt
    if scheduled_at is not None and scheduled_at.tzinfo is None:
        scheduled_at = scheduled_at.replace(tzinfo=UTC)  # a time without a zone is UTC
    scheduled = bool(scheduled_at and scheduled_at > datetime.now(UTC))
    status = "draft" if body.draft else "scheduled" if scheduled else "queued"
    doc = {
        "_id": ObjectId(), "name": body.name, "message": body.message, "intent": body.intent,
        "rule": rule, "segmentId": body.segmentId, "vendor": vendor, "ruleNow": now,
        "status": status, "audienceSize": audience,
        "stats": {**dict.fromkeys(stats.GROUPS, 0), "pending": audience},
        "scheduledAt": scheduled_at, "createdAt": now, "updatedAt": now,
        "sentAt": None, "completedAt": None,
    }  # fmt: skip
    await store["campaigns"].insert_one(doc)
    if status == "queued":
        await jobs.publish(
            runtime.redis,
            runtime.streams.dispatch,
            [jobs.DispatchJob("plan", str(doc["_id"]), store.user_id)],
        )
    return json_response(campaign_view(doc), status=201)


def campaign_view(doc: dict[str, Any]) -> dict[str, Any]:
    counted = doc.get("stats", {})
    view = {
        "id": str(doc["_id"]), "name": doc["name"], "message": doc["message"],
        "intent": doc.get("intent", ""), "rule": doc["rule"], "segmentId": doc.get("segmentId"),
        "vendor": doc["vendor"], "status": doc["status"], "audienceSize": doc["audienceSize"],
        "stats": {k: counted.get(k, 0) for k in stats.GROUPS},
        "deliveryRate": stats.delivery_rate(counted, doc["audienceSize"]),
        "createdAt": doc["createdAt"], "scheduledAt": doc.get("scheduledAt"),
        "sentAt": doc.get("sentAt"), "completedAt": doc.get("completedAt"),
    }  # fmt: skip
    if doc.get("reason"):
        view["reason"] = doc["reason"]
    return view


@routes.post("/api/v1/campaigns")
@routes.post("/api/v1/compaigns")  # the original project's spelling
async def create_campaign(request: web.Request) -> web.Response:
    return await create(request, await json_body(request, CampaignBody))


@routes.post("/api/v1/compaign")
async def create_original(request: web.Request) -> web.Response:
    """The original frontend's body: ``{"compaignDetails": {...}}``."""
    return await create(request, (await json_body(request, OriginalCampaign)).compaignDetails)


@routes.get("/api/v1/campaigns")
@routes.get("/api/v1/compaigns/getCompaign")
async def list_campaigns(request: web.Request) -> web.Response:
    page = read_page(request, keyset=False)
    campaigns = tenant_store(request)["campaigns"]
    cursor = campaigns.find({}, sort=[("createdAt", DESCENDING), ("_id", DESCENDING)],
                            skip=page.offset, limit=page.limit)  # fmt: skip
    items = [campaign_view(doc) async for doc in cursor]
    total = await campaigns.count_documents()
    more = page.offset + len(items) < total
    return json_response(
        {"items": items, "total": total, "cursor": str(page.offset + len(items)) if more else None}
    )


async def _campaign(request: web.Request) -> dict[str, Any]:
    return await tenant_store(request)["campaigns"].get(request.match_info["id"], "campaign")


@routes.get("/api/v1/campaigns/{id}")
async def get_campaign(request: web.Request) -> web.Response:
    doc = await _campaign(request)
    doc["stats"] = await stats.refresh(tenant_store(request), str(doc["_id"]))
    return json_response(campaign_view(doc))


@routes.get("/api/v1/campaigns/{id}/logs")
async def campaign_logs(request: web.Request) -> web.Response:
    doc = await _campaign(request)
    page = read_page(request, keyset=False)
    where: dict[str, Any] = {"campaignId": str(doc["_id"])}
    status = request.query.get("status")
    if status:
        where["status"] = status.upper()
    after = request.query.get("cursor")
    logs = tenant_store(request)["communication_log"]
    total = await logs.count_documents(where)
    query = {**where, "_id": {"$gt": after}} if after else where
    items = [d async for d in logs.find(query, sort=[("_id", 1)], limit=page.limit)]
    return json_response({
        "items": [{"id": d["_id"], "customerId": d["customerId"], "message": d["message"],
                   "status": d["status"], "vendorMessageId": d.get("vendorMessageId"),
                   "reason": d.get("reason"), "updatedAt": d["updatedAt"]} for d in items],
        "total": total,
        "cursor": items[-1]["_id"] if len(items) == page.limit else None,
    })  # fmt: skip


async def _transition(request: web.Request, allowed: tuple[str, ...], to: str) -> dict[str, Any]:
    doc = await _campaign(request)
    result = await tenant_store(request)["campaigns"].update_one(
        {"_id": doc["_id"], "status": {"$in": list(allowed)}},
        {"$set": {"status": to, "updatedAt": datetime.now(UTC)}},
    )
    if not result.modified_count:
        raise Conflict(f"a {doc['status']} campaign cannot be {to}",
                       details={"status": doc["status"]})  # fmt: skip
    return {**doc, "status": to}


async def _requeue_unsent(request: web.Request, store: TenantStore, campaign: str) -> int:
    """Queue send jobs for every unsent message, streaming the ids chunk by chunk; with
    nothing unsent, the campaign is marked sent rather than left waiting."""
    runtime = request.app[RUNTIME]
    queued = 0
    chunk: list[str] = []
    async for doc in store["communication_log"].find(
        {"campaignId": campaign, "status": "PENDING", "vendorMessageId": None},
        projection={"_id": 1}, batch_size=jobs.SEND_CHUNK,
    ):  # fmt: skip
        chunk.append(doc["_id"])
        if len(chunk) == jobs.SEND_CHUNK:
            await jobs.publish(runtime.redis, runtime.streams.dispatch,
                               jobs.send_jobs(campaign, store.user_id, chunk))  # fmt: skip
            queued += len(chunk)
            chunk = []
    await jobs.publish(runtime.redis, runtime.streams.dispatch,
                       jobs.send_jobs(campaign, store.user_id, chunk))  # fmt: skip
    queued += len(chunk)
    if not queued:
        await mark_sent_if_done(store, campaign)
    return queued


@routes.post("/api/v1/campaigns/{id}/send")
async def send_draft(request: web.Request) -> web.Response:
    """A draft goes out: now, or at its scheduledAt."""
    peek = await _campaign(request)
    later = peek.get("scheduledAt") and peek["scheduledAt"].replace(tzinfo=UTC) > datetime.now(UTC)
    doc = await _transition(request, ("draft",), "scheduled" if later else "queued")
    if not later:
        runtime = request.app[RUNTIME]
        await jobs.publish(
            runtime.redis,
            runtime.streams.dispatch,
            [jobs.DispatchJob("plan", str(doc["_id"]), tenant_store(request).user_id)],
        )
    return json_response(campaign_view(doc))


@routes.post("/api/v1/campaigns/{id}/pause")
async def pause(request: web.Request) -> web.Response:
    return json_response(campaign_view(await _transition(request, ("queued", "sending"),
                                                         "paused")))  # fmt: skip


@routes.post("/api/v1/campaigns/{id}/resume")
async def resume(request: web.Request) -> web.Response:
    """Paused before it was planned: plan it now. After: queue what is still unsent."""
    peek = await _campaign(request)
    planned = peek.get("plannedAt") is not None
    doc = await _transition(request, ("paused",), "sending" if planned else "queued")
    store = tenant_store(request)
    if planned:
        await _requeue_unsent(request, store, str(doc["_id"]))
    else:
        runtime = request.app[RUNTIME]
        await jobs.publish(
            runtime.redis,
            runtime.streams.dispatch,
            [jobs.DispatchJob("plan", str(doc["_id"]), store.user_id)],
        )
    return json_response(campaign_view(doc))


@routes.post("/api/v1/campaigns/{id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    return json_response(
        campaign_view(
            await _transition(
                request,
                ("draft", "scheduled", "queued", "planning", "sending", "paused"),
                "cancelled",
            )
        )
    )


@routes.post("/api/v1/campaigns/{id}/retry-failed")
async def retry_failed(request: web.Request) -> web.Response:
    """Send again to FAILED recipients only."""
    doc = await _campaign(request)
    if doc["status"] not in ("sent", "completed", "sending"):
        raise Conflict(f"a {doc['status']} campaign has nothing to retry")
    store = tenant_store(request)
    campaign = str(doc["_id"])
    now = datetime.now(UTC)
    moved = await store["campaigns"].update_one(
        {"_id": doc["_id"], "status": {"$in": ["sent", "completed", "sending"]}},
        {"$set": {"status": "sending", "updatedAt": now}},
    )
    if not moved.matched_count:
        raise Conflict("the campaign changed state; try again")
    reset_fields = {"$set": {"status": "PENDING", "rank": 0, "vendorMessageId": None,
                             "attempts": 0, "gaveUp": False, "updatedAt": now},
                    "$unset": {"reason": "", "times": ""}}  # fmt: skip
    logs = store["communication_log"]
    # Refused by the vendor: a new round, so a new message id. Given up on after retries:
    # the vendor may have taken it, so the same id again (it dedupes on it).
    refused = await logs.update_many(
        {"campaignId": campaign, "status": "FAILED", "gaveUp": {"$ne": True}},
        {**reset_fields, "$inc": {"round": 1}},
    )
    gave_up = await logs.update_many(
        {"campaignId": campaign, "status": "FAILED", "gaveUp": True}, reset_fields
    )
    reset_count = refused.modified_count + gave_up.modified_count
    queued = await _requeue_unsent(request, store, campaign)
    doc["stats"] = await stats.refresh(store, campaign)
    return json_response(
        {
            **campaign_view({**doc, "status": "sending"}),
            "retried": reset_count,
            "queued": queued,
        }
    )


@routes.post("/api/v1/campaigns/{id}/test")
async def test_send(request: web.Request) -> web.Response:
    """One rendered message to one address; no log, no stats."""
    doc = await _campaign(request)
    body = await json_body(request, TestSend)
    store = tenant_store(request)
    customer = await store["customers"].find_one({"email": body.email.lower()}) or {
        "name": current_user(request).name,
        "email": body.email,
    }
    text = render(parse_template(doc["message"]), customer)
    vendor = request.app[RUNTIME].vendors.get(doc["vendor"])
    message = OutgoingMessage(f"test-{ObjectId()}", body.email, customer.get("phone", ""), text)
    [result] = await guarded_send(vendor, [message])
    return json_response({"message": text, "vendor": vendor.name,
                          "accepted": isinstance(result, Accepted),
                          "vendorMessageId": getattr(result, "vendor_message_id", None),
                          "reason": getattr(result, "reason", None)})  # fmt: skip


@routes.get("/api/v1/dashboard-summary")
async def dashboard(request: web.Request) -> web.Response:
    store = tenant_store(request)
    cursor = await store["communication_log"].aggregate(
        [{"$group": {"_id": "$status", "n": {"$sum": 1}}}]
    )
    messages = {d["_id"]: d["n"] async for d in cursor}
    return json_response({
        "customers": await store["customers"].count_documents(),
        "orders": await store["orders"].count_documents(),
        "campaigns": await store["campaigns"].count_documents(),
        "messages": messages,
    })  # fmt: skip
