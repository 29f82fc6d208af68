"""AI endpoints: message variants, rules from sentences, campaign summaries, tags."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web

from crmd.ai.service import Suggesters, valid_summary, valid_tags
from crmd.auth.requests import tenant_store
from crmd.campaigns import stats
from crmd.errors import Unprocessable
from crmd.http.admission import expensive
from crmd.http.bodies import Body, json_body
from crmd.http.describe import described
from crmd.http.keys import SUGGESTERS
from crmd.http.responses import json_response
from crmd.segments.counting import COUNTS
from crmd.segments.query import rule_filter
from crmd.store.tenant import TenantStore

routes = web.RouteTableDef()
Short = Annotated[str, msgspec.Meta(max_length=500)]
BANDS = [
    (0, 1_000, "under 1,000"),
    (1_000, 10_000, "1,000-10,000"),
    (10_000, float("inf"), "10,000+"),
]


class MessagesBody(Body):
    objective: Short = ""
    intent: Short = ""
    rule: Annotated[
        str, msgspec.Meta(max_length=2000, examples=["spend > 1000 AND visits >= 3"])
    ] = ""
    n: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3


class RuleBody(Body):
    text: Annotated[
        str, msgspec.Meta(min_length=1, max_length=500, examples=["who spent over 1000"])
    ]


class TagsBody(Body):
    rule: Annotated[
        str, msgspec.Meta(min_length=1, max_length=2000, examples=["spend > 1000 AND visits >= 3"])
    ]


class Variants(msgspec.Struct):
    variants: list[str]
    source: str
    """Which suggester answered."""


class RuleSuggestion(msgspec.Struct):
    rule: str
    audienceSize: int
    source: str


class Summary(msgspec.Struct):
    summary: str
    source: str


class Tags(msgspec.Struct):
    tags: list[str]
    source: str


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


async def spend_bands(store: TenantStore, campaign_id: str) -> dict[str, Any]:
    """Delivery by the recipients' spend band, for the summary's best and worst."""
    totals = {label: 0 for _, _, label in BANDS}
    reached = {label: 0 for _, _, label in BANDS}
    logs = store["communication_log"].find(
        {"campaignId": campaign_id}, projection={"customerId": 1, "status": 1}
    )
    batch: list[dict[str, Any]] = []

    async def tally() -> None:
        ids = [d["customerId"] for d in batch]
        spend = {
            c["_id"]: c.get("spend", 0)
            for c in await store["customers"].by_ids(ids, projection={"spend": 1})
        }
        for log in batch:
            value = spend.get(log["customerId"], 0) or 0
            label = next(lab for low, high, lab in BANDS if low <= value < high)
            totals[label] += 1
            if log["status"] in ("SENT", "DELIVERED", "OPENED", "CLICKED"):
                reached[label] += 1

    async for log in logs:
        batch.append(log)
        if len(batch) >= 1000:
            await tally()
            batch = []
    if batch:
        await tally()
    bands = [
        {
            "band": label,
            "total": totals[label],
            "reached": reached[label],
            "rate": reached[label] / totals[label] if totals[label] else 0.0,
        }
        for _, _, label in BANDS
    ]
    return {"bands": bands}


@routes.get("/api/v1/campaigns/{id}/summary")
@described("How a campaign went, in words", tag="ai", ok=Summary, errors=(422,))
@expensive
async def summarize(request: web.Request) -> web.Response:
    store = tenant_store(request)
    campaign = await store["campaigns"].get(request.match_info["id"], "campaign")
    summary, source = await campaign_summary(store, request.app[SUGGESTERS], campaign)
    return json_response(Summary(summary, source))


async def campaign_summary(
    store: TenantStore, suggesters: Suggesters, campaign: dict[str, Any]
) -> tuple[str, str]:
    """How the campaign went, in words, and who wrote them; 422 when nobody could."""
    counted = {k: campaign.get("stats", {}).get(k, 0) for k in stats.GROUPS}
    breakdown = await spend_bands(store, str(campaign["_id"]))
    view = {
        "name": campaign["name"],
        "rule": campaign["rule"],
        "audienceSize": campaign["audienceSize"],
        "status": campaign["status"],
    }
    answer = await suggesters.first(
        "summary", lambda s: s.summarize_campaign(view, counted, breakdown), valid_summary
    )
    if answer is None:
        raise Unprocessable("no suggester could summarise this campaign", code="not_understood")
    return answer


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
