"""The original Mini-CRM's clients, mapped onto crmd's clean API in one place.

The original backend's paths (``/compaigns``, ``/compaign``, ``/segment``,
``/uploads/...``, ``/api/receipt``...), its body shapes (``{"compaignDetails": ...}``,
``{"segment_rule": ...}``) and its token header (``x-access-token``) are accepted here.
Each original route is an alias of one of crmd's own: the same handler, with the body
rewritten into crmd's shape on the way in and, where the original clients read another
shape, the answer reshaped on the way out. It works on requests and JSON alone, so it
imports no domain, and crmd's documented routes and shapes never change for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

import msgspec
from aiohttp import BodyPartReader, web
from aiohttp.typedefs import Handler

from crmd.errors import BadRequest
from crmd.http.bodies import BROKEN_FORM, REPLACED_BODY, broken_form, read_json
from crmd.http.responses import json_response

ORIGINAL_TOKEN_HEADER = "x-access-token"

Json = Any
BodyRewrite = Callable[[web.Request], Awaitable[bytes | None]]
"""The body crmd's handler should read instead of the request's (None: the same)."""


def request_token(request: web.Request) -> str | None:
    """The API token from ``Authorization: Bearer <t>``, else from the original
    clients' ``x-access-token: <t>`` header."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    legacy = request.headers.get(ORIGINAL_TOKEN_HEADER, "").strip()
    return legacy or None


class Alias(NamedTuple):
    method: str
    path: str
    """The original's path (an aiohttp pattern)."""
    of: tuple[str, str]
    """The method and canonical path of crmd's route it stands for."""
    body: BodyRewrite | None = None
    answer: Callable[[Json], Json] | None = None
    """Reshapes a successful JSON answer for the original clients."""


# -- rewriting bodies ----------------------------------------------------------------------


def _encoded(value: Json) -> bytes:
    return msgspec.json.encode(value)


async def _segment_body(request: web.Request) -> bytes | None:
    """``{"segment_rule": {"rule", "name"?}}`` is ``{"name", "rule"}``."""
    body = await read_json(request)
    if isinstance(body, dict) and isinstance(body.get("segment_rule"), dict):
        inner = body["segment_rule"]
        return _encoded({"name": body.get("name") or inner.get("name"), "rule": inner.get("rule")})
    return None


async def _campaign_details(request: web.Request) -> bytes | None:
    """``{"compaignDetails": {...}}`` (JSON, or multipart fields named
    ``compaignDetails[name]``... as axios sends an object) is the campaign itself, its
    ``ruleId`` a segment, its ``status: "draft"`` a draft."""
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        body = await _form_fields(request)
    else:
        body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("compaignDetails"), dict):
        raise BadRequest('send {"compaignDetails": {...}}', details={"field": "$.compaignDetails"})
    details = dict(body["compaignDetails"])
    if "ruleId" in details:
        details.setdefault("segmentId", details.pop("ruleId"))
    if details.pop("status", None) == "draft":
        details["draft"] = True
    return _encoded({k: v for k, v in details.items() if k in CAMPAIGN_FIELDS})


CAMPAIGN_FIELDS = frozenset(
    {"name", "message", "intent", "rule", "segmentId", "vendor", "scheduledAt", "draft"}
)
MAX_FIELDS = 32
MAX_FIELD_BYTES = 16 * 1024


async def _form_fields(request: web.Request) -> dict[str, Any]:
    """A multipart form's text fields as nested values: ``a[b]`` is ``{"a": {"b": ...}}``."""
    fields: dict[str, Any] = {}
    if request.content_type == "application/x-www-form-urlencoded":
        posted = await request.post()
        for name, value in list(posted.items())[:MAX_FIELDS]:
            _nest(fields, name, str(value))
        return fields
    try:
        form = await request.multipart()
        count = 0
        while (part := await form.next()) is not None:
            if not isinstance(part, BodyPartReader) or part.filename is not None:
                raise BadRequest("the form may hold text fields only", code="unexpected_part")
            count += 1
            value = await part.read(decode=False)
            if count > MAX_FIELDS or len(value) > MAX_FIELD_BYTES:
                raise BadRequest("the form is too large", code="form_too_large")
            _nest(fields, part.name or "", value.decode("utf-8", "replace"))
    except BROKEN_FORM:
        raise broken_form() from None
    return fields


def _nest(fields: dict[str, Any], name: str, value: str) -> None:
    outer, _, inner = name.partition("[")
    if inner:
        nested = fields.setdefault(outer, {})
        if isinstance(nested, dict):
            nested[inner.rstrip("]")] = value
    else:
        fields[name] = value


def _from_query_or_body(
    *fields: str, rename: Mapping[str, str] | None = None, extra: Mapping[str, Json] | None = None
) -> BodyRewrite:
    """The original sent these fields in the query string (or as a JSON body on a GET):
    crmd's route takes them as a JSON body, some under other names."""

    async def rewrite(request: web.Request) -> bytes | None:
        given: dict[str, Json] = {k: v for k, v in request.query.items() if k in fields}
        if not given and request.can_read_body:
            body = await read_json(request)
            if isinstance(body, dict):
                given = {k: v for k, v in body.items() if k in fields}
        names = rename or {}
        return _encoded({**(extra or {}), **{names.get(k, k): v for k, v in given.items()}})

    return rewrite


# -- reshaping answers ---------------------------------------------------------------------


def _audience_details(answer: Json) -> Json:
    return {
        **answer,
        "audienceDetails": {
            "audienceSize": answer["audienceSize"],
            "audienceIds": answer.get("audienceIds", []),
        },
    }


def _generated_message(answer: Json) -> Json:
    return {"success": True, "message": answer["variants"][0]}


def _original_id(item: Json) -> Json:
    return {**item, "_id": item["id"]}


def _listed(answer: Json) -> Json:
    """A list as the original backend gave it: ``success`` and ``data[]`` with ``_id``."""
    return {**answer, "success": True, "data": [_original_id(i) for i in answer["items"]]}


_COMPARISON = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|!=|==|=|>|<)\s*(.+?)\s*$")


_LOGIC = re.compile(r"\s(AND|OR)\s", re.IGNORECASE)


def _conditions(rule: str) -> Json:
    """The original's ``logicType`` and ``conditions[]`` of a rule, when the rule is one
    AND (or one OR) chain of comparisons, as the original segment form writes them;
    an empty list otherwise (the campaign form maps over it to describe the rule)."""
    for logic in ("AND", "OR"):
        parts = re.split(rf"\s+{logic}\s+", rule, flags=re.IGNORECASE)
        matches = [_COMPARISON.match(part) for part in parts]
        if all(matches) and not any(_LOGIC.search(part) for part in parts):
            conditions = [
                {"field": m[1], "op": m[2], "value": m[3]} for m in matches if m is not None
            ]
            return {"logicType": logic, "conditions": conditions}
    return {"logicType": "AND", "conditions": []}


def _listed_segments(answer: Json) -> Json:
    listed = _listed(answer)
    listed["data"] = [{**s, **_conditions(str(s.get("rule", "")))} for s in listed["data"]]
    return listed


def _created(answer: Json) -> Json:
    return {**answer, "success": True, "message": "created", "data": _original_id(answer)}


def _saved_campaign(answer: Json) -> Json:
    saved = _original_id(answer)
    return {**answer, "success": True, "savedCompaign": saved, "data": saved}


def _totals(answer: Json) -> Json:
    return {
        **answer,
        "success": True,
        "totalCustomers": answer["customers"],
        "totalOrders": answer["orders"],
        "totalCampaigns": answer["campaigns"],
    }


def _uploaded(answer: Json) -> Json:
    rows = answer["rows"]
    said = f"{rows['valid']} of {rows['received']} rows accepted ({rows['rejected']} rejected)"
    return {**answer, "message": said}


V1 = "/api/v1"
_message_request = _from_query_or_body("name", "rule", rename={"name": "objective"}, extra={"n": 1})
ALIASES: tuple[Alias, ...] = (
    Alias("POST", f"{V1}/segment", ("POST", f"{V1}/segments"), _segment_body),
    Alias("GET", f"{V1}/segment", ("GET", f"{V1}/segments")),
    Alias("GET", f"{V1}/segment/{{id}}", ("GET", f"{V1}/segments/{{id}}")),
    Alias("PUT", f"{V1}/segment/{{id}}", ("PUT", f"{V1}/segments/{{id}}"), _segment_body),
    Alias("DELETE", f"{V1}/segment/{{id}}", ("DELETE", f"{V1}/segments/{{id}}")),
    Alias("POST", f"{V1}/segment/preview", ("POST", f"{V1}/segments/preview")),
    Alias(
        "GET",
        f"{V1}/audience/preview",
        ("POST", f"{V1}/segments/preview"),
        _from_query_or_body("rule", extra={"ids": True}),
        _audience_details,
    ),
    # The original frontend's segment page posts to `${baseURL}/api/v1/segment`.
    Alias("POST", f"{V1}/api/v1/segment", ("POST", f"{V1}/segments"), _segment_body),
    Alias("POST", f"{V1}/compaigns", ("POST", f"{V1}/campaigns")),
    Alias("POST", f"{V1}/compaign", ("POST", f"{V1}/campaigns"), _campaign_details),
    Alias("GET", f"{V1}/compaigns/getCompaign", ("GET", f"{V1}/campaigns")),
    Alias("GET", f"{V1}/compaign/getCompaigns", ("GET", f"{V1}/campaigns")),
    Alias("POST", f"{V1}/uploads/{{kind:customers|orders}}", ("POST", f"{V1}/upload/{{kind}}")),
    Alias("POST", "/api/receipt", ("POST", f"{V1}/deliveryReceipt")),
    Alias(
        "GET",
        f"{V1}/user/oauth",
        ("POST", f"{V1}/user/oauth"),
        _from_query_or_body("code", "credential"),
    ),
    Alias(
        "POST",
        "/api/generateMessage",
        ("POST", f"{V1}/ai/messages"),
        _message_request,
        _generated_message,
    ),
    Alias(
        "GET",
        f"{V1}/generateMessage",
        ("POST", f"{V1}/ai/messages"),
        _message_request,
        _generated_message,
    ),
)


SHAPES: dict[tuple[str, str], Callable[[Json], Json]] = {
    ("GET", f"{V1}/customers"): _listed,
    ("GET", f"{V1}/orders"): _listed,
    ("GET", f"{V1}/segments"): _listed_segments,
    ("GET", f"{V1}/segment"): _listed_segments,
    ("GET", f"{V1}/compaign/getCompaigns"): _listed,
    ("GET", f"{V1}/compaigns/getCompaign"): _listed,
    ("POST", f"{V1}/segments"): _created,
    ("POST", f"{V1}/segment"): _created,
    ("POST", f"{V1}/api/v1/segment"): _created,
    ("POST", f"{V1}/compaign"): _saved_campaign,
    ("GET", f"{V1}/dashboard-summary"): _totals,
    ("POST", f"{V1}/uploads/{{kind}}"): _uploaded,
}
"""Answers reshaped for the original clients: on the original's own paths always, on
crmd's paths when the caller signed in as the original frontend does (with
``x-access-token``, not ``Authorization``). The original fields are added; crmd's stay."""
ORIGINAL_PATHS = frozenset(
    (a.method, a.path.replace("{kind:customers|orders}", "{kind}")) for a in ALIASES
)


def original_client(request: web.Request) -> bool:
    return bool(request.headers.get(ORIGINAL_TOKEN_HEADER)) and not request.headers.get(
        "Authorization"
    )


@web.middleware
async def original_shapes(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    resource = request.match_info.route.resource
    key = (request.method, resource.canonical if resource is not None else "")
    shape = SHAPES.get(key)
    if shape is None or not (key in ORIGINAL_PATHS or original_client(request)):
        return response
    return _reshaped(response, shape)


def _reshaped(response: web.StreamResponse, shape: Callable[[Json], Json]) -> web.StreamResponse:
    """A successful JSON answer through ``shape``; anything else as it is."""
    if not isinstance(response, web.Response) or not 200 <= response.status < 300:
        return response
    if not isinstance(response.body, bytes) or response.content_type != "application/json":
        return response
    reshaped = json_response(shape(msgspec.json.decode(response.body)), response.status)
    for name in ("Retry-After", "Location"):
        if name in response.headers:
            reshaped.headers[name] = response.headers[name]
    return reshaped


def alias_handler(alias: Alias, handler: Handler) -> Handler:
    """crmd's ``handler`` behind the original's path: the body rewritten on the way in,
    a successful answer reshaped on the way out. Marks on the handler (``@public``)
    carry over."""

    @functools.wraps(handler)
    async def original(request: web.Request) -> web.StreamResponse:
        if alias.body is not None:
            replaced = await alias.body(request)
            if replaced is not None:
                request[REPLACED_BODY] = replaced
        response = await handler(request)
        if alias.answer is None or not isinstance(response, web.Response):
            return response
        if not 200 <= response.status < 300 or not isinstance(response.body, bytes):
            return response
        return json_response(alias.answer(msgspec.json.decode(response.body)), response.status)

    return original


def add_aliases(app: web.Application) -> dict[tuple[str, str], tuple[str, str]]:
    """Register every original route on ``app``, whose own routes are already there;
    returns which (method, path) is an alias of which (for the API's description)."""
    handlers = {
        (route.method, route.resource.canonical): route.handler
        for route in app.router.routes()
        if route.resource is not None
    }
    table = {}
    for alias in ALIASES:
        handler = handlers[alias.of]
        app.router.add_route(alias.method, alias.path, alias_handler(alias, handler))
        canonical = alias.path.replace("{kind:customers|orders}", "{kind}")
        table[(alias.method, canonical)] = alias.of
    return table
