"""Segments: saved rules with their live audience, and previews of a rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web
from bson import ObjectId
from pymongo import DESCENDING

from crmd.auth.middleware import tenant_store
from crmd.errors import BadRequest
from crmd.http.bodies import json_body
from crmd.http.pages import read_page
from crmd.http.responses import json_response
from crmd.segments.parse import RuleError
from crmd.segments.query import InvalidRule, rule_filter
from crmd.store.tenant import ScopedCollection

routes = web.RouteTableDef()
SAMPLE = 10
MAX_IDS = 1000
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RuleText = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class OriginalRule(msgspec.Struct):
    rule: RuleText
    name: Name | None = None


class SegmentBody(msgspec.Struct):
    """``{"name", "rule"}``, or the original frontend's ``{"segment_rule": {"rule"}}``."""

    name: Name | None = None
    rule: RuleText | None = None
    segment_rule: OriginalRule | None = None

    def resolved(self) -> tuple[str | None, str | None]:
        if self.segment_rule is not None:
            return self.name or self.segment_rule.name, self.segment_rule.rule
        return self.name, self.rule


class PreviewBody(msgspec.Struct):
    rule: RuleText


async def segment_view(customers: ScopedCollection, doc: dict[str, Any]) -> dict[str, Any]:
    size = await customers.count_documents(rule_filter(doc["rule"]))
    return {"id": str(doc["_id"]), "name": doc["name"], "rule": doc["rule"],
            "audienceSize": size, "createdAt": doc["createdAt"],
            "updatedAt": doc.get("updatedAt", doc["createdAt"])}  # fmt: skip


@routes.post("/api/v1/segment")
@routes.post("/api/v1/segments")
async def create_segment(request: web.Request) -> web.Response:
    name, rule = (await json_body(request, SegmentBody)).resolved()
    if rule is None:
        raise InvalidRule(RuleError("a segment needs a rule", 1))
    rule_filter(rule)  # refuse an invalid rule before anything is written
    store = tenant_store(request)
    now = datetime.now(UTC)
    doc = {"_id": ObjectId(),
           "name": name or f"Segment {now:%Y-%m-%d %H:%M}", "rule": rule,
           "createdAt": now, "updatedAt": now}  # fmt: skip
    await store["segments"].insert_one(doc)
    return json_response(await segment_view(store["customers"], doc), status=201)


@routes.get("/api/v1/segment")
@routes.get("/api/v1/segments")
async def list_segments(request: web.Request) -> web.Response:
    page = read_page(request)
    store = tenant_store(request)
    cursor = store["segments"].find({}, sort=[("createdAt", DESCENDING), ("_id", DESCENDING)],
                                    skip=page.offset, limit=page.limit)  # fmt: skip
    items = [await segment_view(store["customers"], doc) async for doc in cursor]
    return json_response({"items": items, "total": await store["segments"].count_documents()})


async def _segment(request: web.Request) -> dict[str, Any]:
    return await tenant_store(request)["segments"].get(request.match_info["id"], "segment")


@routes.get("/api/v1/segment/{id}")
@routes.get("/api/v1/segments/{id}")
async def get_segment(request: web.Request) -> web.Response:
    doc = await _segment(request)
    return json_response(await segment_view(tenant_store(request)["customers"], doc))


@routes.put("/api/v1/segment/{id}")
@routes.put("/api/v1/segments/{id}")
async def update_segment(request: web.Request) -> web.Response:
    name, rule = (await json_body(request, SegmentBody)).resolved()
    if name is None and rule is None:
        raise BadRequest("send a new name, a new rule, or both")
    if rule is not None:
        rule_filter(rule)
    doc = await _segment(request)
    changes: dict[str, Any] = {k: v for k, v in (("name", name), ("rule", rule)) if v}
    changes["updatedAt"] = datetime.now(UTC)
    store = tenant_store(request)
    await store["segments"].update_one({"_id": doc["_id"]}, {"$set": changes})
    return json_response(await segment_view(store["customers"], {**doc, **changes}))


@routes.delete("/api/v1/segment/{id}")
@routes.delete("/api/v1/segments/{id}")
async def delete_segment(request: web.Request) -> web.Response:
    doc = await _segment(request)
    await tenant_store(request)["segments"].delete_one({"_id": doc["_id"]})
    return web.Response(status=204)


def customer_sample(doc: dict[str, Any]) -> dict[str, Any]:
    doc["id"] = doc.pop("_id")
    for hidden in ("userId", "_v", "uploadId"):
        doc.pop(hidden, None)
    return doc


async def preview(customers: ScopedCollection, query: dict[str, Any]) -> dict[str, Any]:
    """The size and a sample in one pass over the matches: SecantusDB finds every match
    even for a ``limit``, so a count and then a sample took twice a count."""
    cursor = await customers.aggregate([
        {"$match": query},
        {"$facet": {"size": [{"$count": "n"}], "sample": [{"$limit": SAMPLE}]}},
    ])  # fmt: skip
    found = (await cursor.to_list())[0]
    size = found["size"][0]["n"] if found["size"] else 0
    return {"audienceSize": size, "sample": [customer_sample(d) for d in found["sample"]]}


@routes.post("/api/v1/segment/preview")
@routes.post("/api/v1/segments/preview")
async def preview_segment(request: web.Request) -> web.Response:
    body = await json_body(request, PreviewBody)
    customers = tenant_store(request)["customers"]
    return json_response(await preview(customers, rule_filter(body.rule)))


@routes.get("/api/v1/audience/preview")
async def audience_preview(request: web.Request) -> web.Response:
    """``?rule=`` or, as the original frontend sends it, a JSON body ``{"rule"}``. The
    answer carries both shapes: the preview's and the original's ``audienceDetails``."""
    rule = request.query.get("rule")
    if rule is None:
        if not request.can_read_body:
            raise BadRequest("send the rule as ?rule=... or as a JSON body {\"rule\": ...}",
                             details={"field": "rule"})  # fmt: skip
        rule = (await json_body(request, PreviewBody)).rule
    customers = tenant_store(request)["customers"]
    query = rule_filter(rule)  # one moment for the size, the sample and the ids
    answer = await preview(customers, query)
    ids = [d["_id"] async for d in customers.find(query, projection={"_id": 1},
                                                  limit=MAX_IDS)]  # fmt: skip
    answer["audienceDetails"] = {"audienceSize": answer["audienceSize"], "audienceIds": ids}
    return json_response(answer)
