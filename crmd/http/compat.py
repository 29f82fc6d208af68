"""The original Mini-CRM's clients, mapped onto crmd's clean API in one place.

The original backend's paths (``/compaigns``, ``/compaign``, ``/segment``,
``/uploads/...``, ``/api/receipt``...), its body shapes (``{"compaignDetails": ...}``,
``{"segment_rule": ...}``) and its token header (``x-access-token``) are accepted here
and handed to crmd's own handlers; crmd's documented routes and shapes never change for
them. Every route here is marked as an alias of the route it maps to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import msgspec
from aiohttp import web

from crmd.ai.routes import MessagesBody, variants
from crmd.auth import routes as auth_routes
from crmd.auth.requests import public, tenant_store
from crmd.campaigns import routes as campaign_routes
from crmd.campaigns.service import CampaignBody
from crmd.errors import BadRequest
from crmd.http.bodies import json_body
from crmd.http.keys import CAMPAIGNS
from crmd.http.responses import json_response
from crmd.ingest import routes as ingest_routes
from crmd.receipts import routes as receipt_routes
from crmd.segments import routes as segment_routes
from crmd.segments.parse import RuleError
from crmd.segments.query import InvalidRule, rule_filter

ORIGINAL_TOKEN_HEADER = "x-access-token"
routes = web.RouteTableDef()
ALIASES: dict[tuple[str, str], str] = {}
"""(method, original path) → the path of crmd's route it stands for."""


def request_token(request: web.Request) -> str | None:
    """The API token from ``Authorization: Bearer <t>``, else from the original
    clients' ``x-access-token: <t>`` header."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    legacy = request.headers.get(ORIGINAL_TOKEN_HEADER, "").strip()
    return legacy or None


HandlerT = TypeVar("HandlerT", bound=Callable[..., Awaitable[web.StreamResponse]])


def alias(method: str, path: str, of: str) -> Callable[[HandlerT], HandlerT]:
    """Register the decorated handler at the original ``path``, as an alias of ``of``."""

    def register(handler: HandlerT) -> HandlerT:
        ALIASES[(method, path)] = of
        routes.route(method, path)(handler)
        return handler

    return register


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RuleText = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class OriginalRule(msgspec.Struct):
    rule: RuleText
    name: Name | None = None


class OriginalSegment(msgspec.Struct):
    """``{"name", "rule"}``, or the original frontend's ``{"segment_rule": {"rule"}}``."""

    name: Name | None = None
    rule: RuleText | None = None
    segment_rule: OriginalRule | None = None


class OriginalCampaign(msgspec.Struct):
    compaignDetails: CampaignBody


class OriginalGenerate(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=500)] = ""
    rule: Annotated[str, msgspec.Meta(max_length=2000)] = ""


def _segment_body(body: OriginalSegment) -> tuple[str | None, str | None]:
    if body.segment_rule is not None:
        return body.name or body.segment_rule.name, body.segment_rule.rule
    return body.name, body.rule


# -- segments: the original's singular path and body ----------------------------------


@alias("POST", "/api/v1/segment", of="/api/v1/segments")
async def create_segment(request: web.Request) -> web.StreamResponse:
    name, rule = _segment_body(await json_body(request, OriginalSegment))
    if rule is None:
        raise InvalidRule(RuleError("a segment needs a rule", 1))
    doc = await segment_routes.save_segment(tenant_store(request), name, rule)
    return json_response(segment_routes.segment_view(doc), status=201)


@alias("GET", "/api/v1/segment", of="/api/v1/segments")
async def list_segments(request: web.Request) -> web.StreamResponse:
    return await segment_routes.list_segments(request)


@alias("GET", "/api/v1/segment/{id}", of="/api/v1/segments/{id}")
async def get_segment(request: web.Request) -> web.StreamResponse:
    return await segment_routes.get_segment(request)


@alias("PUT", "/api/v1/segment/{id}", of="/api/v1/segments/{id}")
async def update_segment(request: web.Request) -> web.StreamResponse:
    return await segment_routes.update_segment(request)


@alias("DELETE", "/api/v1/segment/{id}", of="/api/v1/segments/{id}")
async def delete_segment(request: web.Request) -> web.StreamResponse:
    return await segment_routes.delete_segment(request)


@alias("POST", "/api/v1/segment/preview", of="/api/v1/segments/preview")
async def preview_segment(request: web.Request) -> web.StreamResponse:
    return await segment_routes.preview_segment(request)


@alias("GET", "/api/v1/audience/preview", of="/api/v1/segments/preview")
async def audience_preview(request: web.Request) -> web.StreamResponse:
    """``?rule=`` or, as the original frontend sends it, a JSON body ``{"rule"}``. The
    answer carries both shapes: the preview's and the original's ``audienceDetails``."""
    rule = request.query.get("rule")
    if rule is None:
        if not request.can_read_body:
            raise BadRequest(
                'send the rule as ?rule=... or as a JSON body {"rule": ...}',
                details={"field": "rule"},
            )
        rule = (await json_body(request, segment_routes.PreviewBody)).rule
    customers = tenant_store(request)["customers"]
    query = rule_filter(rule)  # one moment for the size, the sample and the ids
    answer = await segment_routes.preview(customers, query)
    ids = await segment_routes.audience_ids(customers, query)
    answer["audienceDetails"] = {"audienceSize": answer["audienceSize"], "audienceIds": ids}
    return json_response(answer)


# -- campaigns ---------------------------------------------------------------------------


@alias("POST", "/api/v1/compaigns", of="/api/v1/campaigns")
async def create_campaign(request: web.Request) -> web.StreamResponse:
    return await campaign_routes.create_campaign(request)


@alias("POST", "/api/v1/compaign", of="/api/v1/campaigns")
async def create_original_campaign(request: web.Request) -> web.StreamResponse:
    """The original frontend's body: ``{"compaignDetails": {...}}``."""
    body = (await json_body(request, OriginalCampaign)).compaignDetails
    doc = await request.app[CAMPAIGNS].create(tenant_store(request), body)
    return json_response(campaign_routes.campaign_view(doc), status=201)


@alias("GET", "/api/v1/compaigns/getCompaign", of="/api/v1/campaigns")
async def list_campaigns(request: web.Request) -> web.StreamResponse:
    return await campaign_routes.list_campaigns(request)


# -- uploads, receipts, sign-in, messages ------------------------------------------------


@alias("POST", "/api/v1/uploads/{kind:customers|orders}", of="/api/v1/upload/{kind}")
async def upload(request: web.Request) -> web.StreamResponse:
    return await ingest_routes.upload(request)


@alias("POST", "/api/receipt", of="/api/v1/deliveryReceipt")
@public
async def receipt(request: web.Request) -> web.StreamResponse:
    return await receipt_routes.default_receipt(request)


@alias("GET", "/api/v1/user/oauth", of="/api/v1/user/oauth")
@public
async def oauth_query(request: web.Request) -> web.StreamResponse:
    """The original frontend sends the popup's code as a query parameter."""
    try:
        login = msgspec.convert(dict(request.query), auth_routes.GoogleLogin)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc)) from None
    return await auth_routes.sign_in_with_google(request, login)


@alias("GET", "/api/v1/generateMessage", of="/api/v1/ai/messages")
async def generate_message(request: web.Request) -> web.StreamResponse:
    """The original frontend: ``{name, rule}`` in the query or in a JSON body."""
    if request.query:
        try:
            original = msgspec.convert(dict(request.query), OriginalGenerate)
        except msgspec.ValidationError as exc:
            raise BadRequest(str(exc)) from None
    else:
        original = await json_body(request, OriginalGenerate)
    body = MessagesBody(objective=original.name, rule=original.rule, n=1)
    found, _ = await variants(request, body)
    return json_response({"success": True, "message": found[0]})
