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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from crmd.errors import BadRequest
from crmd.http.bodies import REPLACED_BODY, read_json
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
    """``{"compaignDetails": {...}}`` is the campaign itself."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("compaignDetails"), dict):
        raise BadRequest('send {"compaignDetails": {...}}', details={"field": "$.compaignDetails"})
    return _encoded(body["compaignDetails"])


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


V1 = "/api/v1"
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
    Alias("POST", f"{V1}/compaigns", ("POST", f"{V1}/campaigns")),
    Alias("POST", f"{V1}/compaign", ("POST", f"{V1}/campaigns"), _campaign_details),
    Alias("GET", f"{V1}/compaigns/getCompaign", ("GET", f"{V1}/campaigns")),
    Alias("POST", f"{V1}/uploads/{{kind:customers|orders}}", ("POST", f"{V1}/upload/{{kind}}")),
    Alias("POST", "/api/receipt", ("POST", f"{V1}/deliveryReceipt")),
    Alias(
        "GET",
        f"{V1}/user/oauth",
        ("POST", f"{V1}/user/oauth"),
        _from_query_or_body("code", "credential"),
    ),
    Alias(
        "GET",
        f"{V1}/generateMessage",
        ("POST", f"{V1}/ai/messages"),
        _from_query_or_body("name", "rule", rename={"name": "objective"}, extra={"n": 1}),
        _generated_message,
    ),
)


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
