"""Segments: saved rules with their audience size as last counted, and previews.

A list of segments is one query: each segment keeps its size with the moment it was
counted (``countedAt``), written when it is saved and refreshed in the background by
the clock. ``GET /segments/{id}?refresh=true`` counts it now, for that answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web
from bson import ObjectId
from msgspec import UNSET, UnsetType
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from crmd.auth.requests import tenant_store
from crmd.errors import BadRequest
from crmd.http.bodies import Body, json_body
from crmd.http.describe import Link, Moment, described
from crmd.http.pages import PageQuery, choice, read_page
from crmd.http.responses import json_response
from crmd.segments.audience import audience
from crmd.segments.parse import RuleError
from crmd.segments.query import InvalidRule, rule_now
from crmd.store.numbering import reserve
from crmd.store.tenant import ScopedCollection, TenantStore

routes = web.RouteTableDef()
SAMPLE = 10
MAX_IDS = 1000
STALE_AFTER = timedelta(minutes=5)
REFRESH_BATCH = 20
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Loyal"])]
RuleText = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2000, examples=["spend > 1000 AND visits >= 3"])
]


class SegmentBody(Body):
    name: Name | None = None
    rule: RuleText | None = None


class PreviewBody(Body):
    rule: RuleText
    ids: bool = False
    """Also answer ``audienceIds``: the ids of at most 1,000 of the customers."""


class Segment(msgspec.Struct):
    id: str
    name: str
    rule: str
    audienceSize: int | None
    """How many customers matched when last counted (null: the rule no longer parses)."""
    countedAt: Moment | None
    createdAt: Moment
    updatedAt: Moment


class SegmentList(msgspec.Struct):
    items: list[Segment]
    total: int


class RefreshQuery(msgspec.Struct):
    refresh: Literal["true", "false"] | None = None
    """``true``: count the audience now, for this answer."""


class Preview(msgspec.Struct):
    audienceSize: int
    sample: list[dict[str, Any]]
    """Up to ten matching customers, as imported."""
    audienceIds: list[str] | UnsetType = UNSET
    """With ``ids``: the ids of up to 1,000 of them."""


SEGMENT_LINKS = {
    "get": Link("get_segment", {"id": "$response.body#/id"}),
    "update": Link("update_segment", {"id": "$response.body#/id"}),
    "delete": Link("delete_segment", {"id": "$response.body#/id"}),
}


def segment_view(doc: dict[str, Any]) -> Segment:
    return Segment(
        id=str(doc["_id"]),
        name=doc["name"],
        rule=doc["rule"],
        audienceSize=doc.get("audienceSize"),
        countedAt=doc.get("countedAt"),
        createdAt=doc["createdAt"],
        updatedAt=doc.get("updatedAt", doc["createdAt"]),
    )


async def count(customers: ScopedCollection, rule: str) -> tuple[int, datetime]:
    now = rule_now()
    return (await audience(customers, rule, now))[0], now


async def save_segment(store: TenantStore, name: str | None, rule: str) -> dict[str, Any]:
    """A new segment, counted (an invalid rule is refused before anything is written)."""
    size, counted = await count(store["customers"], rule)
    now = datetime.now(UTC)
    doc = {
        "_id": ObjectId(),
        "n": await reserve(store.db, store.user_id, "segments", 1),
        "name": name or f"Segment {now:%Y-%m-%d %H:%M}",
        "rule": rule,
        "audienceSize": size,
        "countedAt": counted,
        "createdAt": now,
        "updatedAt": now,
    }
    await store["segments"].insert_one(doc)
    return doc


@routes.post("/api/v1/segments")
@described(
    "Save a rule as a segment, counted",
    tag="segments",
    body=SegmentBody,
    ok={201: Segment},
    links=SEGMENT_LINKS,
)
async def create_segment(request: web.Request) -> web.Response:
    body = await json_body(request, SegmentBody)
    if body.rule is None:
        raise InvalidRule(RuleError("a segment needs a rule", 1))
    doc = await save_segment(tenant_store(request), body.name, body.rule)
    return json_response(segment_view(doc), status=201)


@routes.get("/api/v1/segments")
@described(
    "List segments, newest first",
    tag="segments",
    ok=SegmentList,
    query=PageQuery,
)
async def list_segments(request: web.Request) -> web.Response:
    page = read_page(request, keyset=False)
    segments = tenant_store(request)["segments"]
    cursor = segments.find(
        {},
        sort=[("createdAt", DESCENDING), ("_id", DESCENDING)],
        skip=page.offset,
        limit=page.limit,
    )
    items = [segment_view(doc) async for doc in cursor]
    return json_response(SegmentList(items, await segments.count_documents()))


@routes.get("/api/v1/segments/{id}")
@described(
    "A segment (its size as last counted, or now)", tag="segments", ok=Segment, query=RefreshQuery
)
async def get_segment(request: web.Request) -> web.Response:
    store = tenant_store(request)
    doc = await store["segments"].get(request.match_info["id"], "segment")
    if choice(request, "refresh", ("true", "false")) == "true":
        doc["audienceSize"], doc["countedAt"] = await count(store["customers"], doc["rule"])
    return json_response(segment_view(doc))


@routes.put("/api/v1/segments/{id}")
@described("Rename a segment or change its rule", tag="segments", body=SegmentBody, ok=Segment)
async def update_segment(request: web.Request) -> web.Response:
    body = await json_body(request, SegmentBody)
    if body.name is None and body.rule is None:
        raise BadRequest("send a new name, a new rule, or both")
    store = tenant_store(request)
    doc = await store["segments"].get(request.match_info["id"], "segment")
    changes: dict[str, Any] = {k: v for k, v in (("name", body.name), ("rule", body.rule)) if v}
    changes["audienceSize"], changes["countedAt"] = await count(
        store["customers"], body.rule or doc["rule"]
    )
    changes["updatedAt"] = datetime.now(UTC)
    await store["segments"].update_one({"_id": doc["_id"]}, {"$set": changes})
    return json_response(segment_view({**doc, **changes}))


@routes.delete("/api/v1/segments/{id}")
@described("Delete a segment", tag="segments", ok={204: None})
async def delete_segment(request: web.Request) -> web.Response:
    store = tenant_store(request)
    doc = await store["segments"].get(request.match_info["id"], "segment")
    await store["segments"].delete_one({"_id": doc["_id"]})
    return web.Response(status=204)


def customer_sample(doc: dict[str, Any]) -> dict[str, Any]:
    doc["id"] = doc.pop("_id")
    for hidden in ("userId", "_v", "uploadId"):
        doc.pop(hidden, None)
    return doc


async def preview(customers: ScopedCollection, rule: str, ids: int = 0) -> Preview:
    """The size and a sample (and ids) in one pass over the matches."""
    size, sample, found = await audience(customers, rule, sample=SAMPLE, ids=ids)
    answer = Preview(size, [customer_sample(d) for d in sample])
    if ids:
        answer.audienceIds = [str(i) for i in found]
    return answer


@routes.post("/api/v1/segments/preview")
@described(
    "How many customers a rule matches, and a sample", tag="segments", body=PreviewBody, ok=Preview
)
async def preview_segment(request: web.Request) -> web.Response:
    body = await json_body(request, PreviewBody)
    customers = tenant_store(request)["customers"]
    return json_response(await preview(customers, body.rule, MAX_IDS if body.ids else 0))


async def refresh_stale_counts(db: AsyncDatabase[dict[str, Any]], now: datetime) -> int:
    """Count again the segments counted longest ago (a few per call: the clock calls it
    every few seconds); returns how many."""
    refreshed = 0
    stale = {"countedAt": {"$lt": now - STALE_AFTER}}
    oldest = db.segments.find(
        stale,
        projection={"userId": 1, "rule": 1},
        sort=[("countedAt", ASCENDING)],
        limit=REFRESH_BATCH,
    )
    async for segment in oldest:
        store = TenantStore(db, segment["userId"])
        try:
            size, counted = await count(store["customers"], segment["rule"])
        except InvalidRule:  # a rule that no longer parses (the language changed)
            size, counted = None, now
        await store["segments"].update_one(
            {"_id": segment["_id"]}, {"$set": {"audienceSize": size, "countedAt": counted}}
        )
        refreshed += 1
    return refreshed
