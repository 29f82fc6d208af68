"""Segments: a rule box that counts its audience as you type (or with ``Count``), a rule
suggested from words, and the saved segments with their sizes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.console.web import form, render, scripted, see_other, unfinished
from crmd.errors import BadRequest, CrmdError, Unprocessable
from crmd.http.admission import expensive
from crmd.http.bodies import json_body
from crmd.http.keys import SUGGESTERS
from crmd.http.responses import plain_json
from crmd.http.schema import Body
from crmd.segments.counting import COUNTS
from crmd.segments.fields import known_fields
from crmd.segments.parse import RuleError
from crmd.segments.query import InvalidRule
from crmd.segments.schema import RuleText
from crmd.segments.service import (
    change_segment,
    preview,
    remove_segment,
    save_segment,
    segment_by_id,
)
from crmd.store.documents import Segment, decode_all
from crmd.store.windows import newest
from crmd.workspaces.guard import audited

routes = web.RouteTableDef()
SAMPLE_SHOWN = 5
MAX_NAME = 200
MAX_RULE = 2000
MAX_WORDS = 500


class CountBody(Body):
    rule: RuleText


class SuggestBody(Body):
    text: str


async def count(request: web.Request, rule: str) -> dict[str, Any]:
    """The audience of ``rule`` now, and a few of its customers; while the count goes on
    (``complete`` false), what is counted so far and how far it got."""
    found = await preview(request.app[COUNTS], tenant_store(request), rule)
    return {
        "audienceSize": found.count.size,
        "complete": found.count.complete,
        "progress": found.count.progress,
        "sample": [
            {"name": c.get("name", ""), "email": c.get("email", "")}
            for c in found.sample[:SAMPLE_SHOWN]
        ],
    }


async def _page(request: web.Request, **extra: Any) -> web.Response:
    store = tenant_store(request)
    window = await newest(store["segments"], await store.highest("segments"), limit=100)
    context = {
        "items": decode_all(window.items, Segment),
        "fields": known_fields(),
        "rule": "",
        "name": "",
        "words": "",
        "counted": None,
        "error": None,
        "suggested": None,
        **extra,
    }
    return render(
        request, "segments.html", context, section="Segments", status=extra.get("status", 200)
    )


@routes.get("/segments")
async def segments(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/segments")
@expensive
async def segment_form(request: web.Request) -> web.StreamResponse:
    """Without JavaScript the form's buttons all post here: count, suggest, or save."""
    fields = await form(request)
    action = fields.get("action", "save")
    if action not in ("save", "count", "suggest"):
        raise BadRequest("unknown action", details={"field": "action"})
    rule = fields.get("rule", "").strip()
    name = fields.get("name", "").strip()
    words = fields.get("words", "").strip()
    if len(rule) > MAX_RULE or len(name) > MAX_NAME or len(words) > MAX_WORDS:
        raise BadRequest("a field is longer than the form allows")
    kept = {"rule": rule, "name": name, "words": words}
    try:
        if action == "suggest":
            if not words:
                raise BadRequest("describe the audience in words first")
            rule, source = await request.app[SUGGESTERS].rule(words)
            counted = await count(request, rule)
            return await _page(
                request, **(kept | {"rule": rule}), suggested=source, counted=counted
            )
        if not rule:
            raise InvalidRule(RuleError("write a rule first", 1))
        if action == "count":
            return await _page(request, **kept, counted=await count(request, rule))
        doc = await save_segment(request.app[COUNTS], tenant_store(request), name or None, rule)
    except InvalidRule as exc:
        error = {"message": exc.message, "column": exc.column, "id": "rule-error"}
        return await _page(request, **kept, error=error, status=422)
    except CrmdError as exc:
        return await _page(request, **kept, error={"message": exc.message}, status=exc.status)
    audited(request, str(doc.id))
    size = doc.audienceSize
    said = "its customers are being counted" if size is None else f"{size:,} customers"
    return see_other("/segments", f"Saved {doc.name}: {said}.")


async def _edit_page(request: web.Request, doc: Segment, **extra: Any) -> web.Response:
    context = {
        "title": f"Segment {doc.name}",
        "s": doc,
        "fields": known_fields(),
        "name": doc.name,
        "rule": doc.rule,
        "counted": None,
        "error": None,
        **extra,
    }
    return render(
        request, "segment.html", context, section="Segments", status=extra.get("status", 200)
    )


@routes.get("/segments/{id:[0-9a-f]{24}}")
async def segment(request: web.Request) -> web.Response:
    """One segment, to rename, to change its rule (counted as it is typed), or to delete."""
    doc = await segment_by_id(tenant_store(request), request.match_info["id"])
    return await _edit_page(request, doc)


@routes.post("/segments/{id:[0-9a-f]{24}}")
@expensive
async def change(request: web.Request) -> web.StreamResponse:
    store = tenant_store(request)
    doc = await segment_by_id(store, request.match_info["id"])
    fields = await form(request)
    action = fields.get("action", "save")
    if action not in ("save", "count"):
        raise BadRequest("unknown action", details={"field": "action"})
    rule = fields.get("rule", "").strip()
    name = fields.get("name", "").strip()
    if len(rule) > MAX_RULE or len(name) > MAX_NAME:
        raise BadRequest("a field is longer than the form allows")
    kept = {"rule": rule, "name": name}
    try:
        if not rule:
            raise InvalidRule(RuleError("write a rule first", 1))
        if action == "count":
            return await _edit_page(request, doc, **kept, counted=await count(request, rule))
        changed = await change_segment(request.app[COUNTS], store, str(doc.id), name or None, rule)
    except InvalidRule as exc:
        error = {"message": exc.message, "column": exc.column, "id": "rule-error"}
        return await _edit_page(request, doc, **kept, error=error, status=422)
    size = changed.audienceSize
    said = "its customers are being counted" if size is None else f"{size:,} customers"
    audited(request, str(changed.id))
    return see_other("/segments", f"Saved {changed.name}: {said}.")


@routes.post("/segments/{id:[0-9a-f]{24}}/delete")
async def delete(request: web.Request) -> web.StreamResponse:
    await form(request)
    gone = await remove_segment(tenant_store(request), request.match_info["id"])
    audited(request, request.match_info["id"])
    return see_other("/segments", f"Deleted {gone.name}.")


@routes.post("/segments/count")
@scripted
@expensive
async def count_as_you_type(request: web.Request) -> web.Response:
    """A rule being typed is often not a rule yet: that is an answer (200, saying
    what is wrong and where), not a failed request."""
    body = await json_body(request, CountBody)
    try:
        return plain_json(await count(request, body.rule))
    except InvalidRule as exc:
        return plain_json(unfinished(exc.message, exc.column))


@routes.post("/segments/suggest")
@scripted
async def suggest_rule(request: web.Request) -> web.Response:
    body = await json_body(request, SuggestBody)
    text = body.text.strip()
    if not text or len(text) > MAX_WORDS:
        raise BadRequest(
            f"describe the audience in 1 to {MAX_WORDS} characters", details={"field": "text"}
        )
    try:
        rule, source = await request.app[SUGGESTERS].rule(text)
    except Unprocessable as exc:
        return plain_json(unfinished(exc.message))
    return plain_json({"rule": rule, "source": source})
