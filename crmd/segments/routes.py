"""Segments: saved rules with their audience size as last counted, and previews.

A list of segments is a page of them: each keeps its size with the moment it was
counted (``countedAt``), written when it is saved and refreshed in the background by
the clock (``crmd.segments.service``). ``GET /segments/{id}?refresh=true`` counts it
now, for that answer. Counts go through the audience counter
(``crmd.segments.counting``): a count that is not done within its wait is answered 202
with what is counted so far."""

from __future__ import annotations

from typing import Literal

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.errors import BadRequest
from crmd.http.admission import asked_for, expensive, expensive_when, slot
from crmd.http.bodies import json_body
from crmd.http.describe import Link, described
from crmd.http.pages import PageQuery, choice, newest_page, read_page
from crmd.http.responses import json_response
from crmd.segments.counting import COUNTS
from crmd.segments.parse import RuleError
from crmd.segments.query import InvalidRule
from crmd.segments.schema import (
    Preview,
    PreviewBody,
    Segment,
    SegmentBody,
    SegmentList,
)
from crmd.segments.service import (
    change_segment,
    preview,
    remove_segment,
    save_segment,
    segment_by_id,
    segment_size,
)
from crmd.store import documents

routes = web.RouteTableDef()
MAX_IDS = 1000
COUNTING_RETRY = "1"
"""Retry-After on an answer whose count goes on (202)."""


class RefreshQuery(msgspec.Struct):
    refresh: Literal["true", "false"] | None = None
    """``true``: count the audience now, for this answer."""


SEGMENT_LINKS = {
    "get": Link("get_segment", {"id": "$response.body#/id"}),
    "update": Link("update_segment", {"id": "$response.body#/id"}),
    "delete": Link("delete_segment", {"id": "$response.body#/id"}),
}


def segment_view(doc: documents.Segment) -> Segment:
    return Segment(
        id=str(doc.id),
        name=doc.name,
        rule=doc.rule,
        audienceSize=doc.audienceSize,
        countedAt=doc.countedAt,
        createdAt=doc.createdAt,
        updatedAt=doc.updatedAt or doc.createdAt,
    )


@routes.post("/api/v1/segments")
@described(
    "Save a rule as a segment, counted",
    tag="segments",
    body=SegmentBody,
    ok={201: Segment},
    links=SEGMENT_LINKS,
)
@expensive
async def create_segment(request: web.Request) -> web.Response:
    body = await json_body(request, SegmentBody)
    if body.rule is None:
        raise InvalidRule(RuleError("a segment needs a rule", 1))
    store = tenant_store(request)
    doc = await save_segment(request.app[COUNTS], store, body.name, body.rule)
    return json_response(segment_view(doc), status=201)


@routes.get("/api/v1/segments")
@described(
    "List segments, newest first",
    tag="segments",
    ok=SegmentList,
    query=PageQuery,
)
async def list_segments(request: web.Request) -> web.Response:
    """A range of the newest segments (``crmd.store.windows``) and the tally: no sort of
    the collection, no count."""
    page = read_page(request, keyset=False)
    store = tenant_store(request)
    docs, _, total = await newest_page(store, "segments", page, None)
    found = documents.decode_all(docs, documents.Segment)
    return json_response(SegmentList([segment_view(doc) for doc in found], total))


@routes.get("/api/v1/segments/{id}")
@described(
    "A segment (its size as last counted, or now)",
    tag="segments",
    ok={200: Segment, 202: Segment},
    query=RefreshQuery,
)
@expensive_when(asked_for("refresh"))
async def get_segment(request: web.Request) -> web.Response:
    store = tenant_store(request)
    doc = await segment_by_id(store, request.match_info["id"])
    if choice(request, "refresh", ("true", "false")) == "true":
        size, counted = await segment_size(request.app[COUNTS], store, doc.rule)
        doc = msgspec.structs.replace(doc, audienceSize=size, countedAt=counted)
        if counted is None:
            return counting(json_response(segment_view(doc), status=202))
    return json_response(segment_view(doc))


def counting(response: web.Response) -> web.Response:
    """A 202 whose count goes on: when to ask again."""
    response.headers["Retry-After"] = COUNTING_RETRY
    return response


@routes.put("/api/v1/segments/{id}")
@described("Rename a segment or change its rule", tag="segments", body=SegmentBody, ok=Segment)
@expensive
async def update_segment(request: web.Request) -> web.Response:
    body = await json_body(request, SegmentBody)
    if body.name is None and body.rule is None:
        raise BadRequest("send a new name, a new rule, or both")
    changed = await change_segment(
        request.app[COUNTS], tenant_store(request), request.match_info["id"], body.name, body.rule
    )
    return json_response(segment_view(changed))


@routes.delete("/api/v1/segments/{id}")
@described("Delete a segment", tag="segments", ok={204: None})
async def delete_segment(request: web.Request) -> web.Response:
    await remove_segment(tenant_store(request), request.match_info["id"])
    return web.Response(status=204)


@routes.post("/api/v1/segments/preview")
@described(
    "How many customers a rule matches, and a sample",
    tag="segments",
    body=PreviewBody,
    ok={200: Preview, 202: Preview},
)
async def preview_segment(request: web.Request) -> web.Response:
    """What is kept of the rule's count is read holding an expensive read's slot; a
    count that goes on in the background is waited for (``count_wait``) without one."""
    body = await json_body(request, PreviewBody)
    counter, store = request.app[COUNTS], tenant_store(request)
    ids = MAX_IDS if body.ids else 0
    async with slot(request):
        found = await preview(counter, store, body.rule, ids, wait=0)
    if not found.count.complete:
        found = await preview(counter, store, body.rule)
    counted = found.count
    answer = Preview(counted.size, found.sample, counted.complete, counted.progress)
    if found.ids is not None:
        answer.audienceIds = found.ids
    if counted.complete:
        return json_response(answer)
    return counting(json_response(answer, status=202))
