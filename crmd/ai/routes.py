"""AI endpoints: message variants, rules from sentences, campaign summaries, tags."""

from __future__ import annotations

from aiohttp import web

from crmd.ai.schema import (
    MessagesBody,
    RuleBody,
    RuleSuggestion,
    Summary,
    Tags,
    TagsBody,
    Variants,
)
from crmd.ai.service import campaign_summary, valid_tags
from crmd.auth.requests import tenant_store
from crmd.campaigns.service import campaign_by_id
from crmd.errors import Unprocessable
from crmd.http.admission import expensive
from crmd.http.bodies import json_body
from crmd.http.describe import described
from crmd.http.keys import SUGGESTERS
from crmd.http.responses import json_response
from crmd.segments.counting import COUNTS
from crmd.segments.query import rule_filter

routes = web.RouteTableDef()


async def variants(request: web.Request, body: MessagesBody) -> tuple[list[str], str]:
    if body.rule:
        rule_filter(body.rule)  # 422 for a bad rule, before any plugin sees it
    return await request.app[SUGGESTERS].messages(body.objective, body.intent, body.rule, body.n)


@routes.post("/api/v1/ai/messages")
@described("Message suggestions for an objective", tag="ai", body=MessagesBody, ok=Variants)
async def suggest_messages(request: web.Request) -> web.Response:
    found, source = await variants(request, await json_body(request, MessagesBody))
    return json_response(Variants(found, source))


@routes.post("/api/v1/ai/rule")
@described("A rule from a sentence, counted", tag="ai", body=RuleBody, ok=RuleSuggestion)
@expensive
async def rule_from_text(request: web.Request) -> web.Response:
    body = await json_body(request, RuleBody)
    rule, source = await request.app[SUGGESTERS].rule(body.text)
    size = (await request.app[COUNTS].count_all(tenant_store(request), rule)).size
    return json_response(RuleSuggestion(rule, size, source))


@routes.get("/api/v1/campaigns/{id}/summary")
@described("How a campaign went, in words", tag="ai", ok=Summary, errors=(422,))
@expensive
async def summarize(request: web.Request) -> web.Response:
    store = tenant_store(request)
    campaign = await campaign_by_id(store, request.match_info["id"])
    summary, source = await campaign_summary(store, request.app[SUGGESTERS], campaign)
    return json_response(Summary(summary, source))


@routes.post("/api/v1/ai/tags")
@described("Tags describing a segment's rule", tag="ai", body=TagsBody, ok=Tags)
@expensive
async def tag_segment(request: web.Request) -> web.Response:
    body = await json_body(request, TagsBody)
    size = (await request.app[COUNTS].count_all(tenant_store(request), body.rule)).size
    answer = await request.app[SUGGESTERS].first(
        "tags", lambda s: s.tag_segment(body.rule, {"audienceSize": size}), valid_tags
    )
    if answer is None:
        raise Unprocessable("no suggester could tag this segment", code="not_understood")
    tags, source = answer
    return json_response(Tags(tags, source))
