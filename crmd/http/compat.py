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

from crmd.errors import BadRequest, CrmdError, Unprocessable
from crmd.http import original_lists
from crmd.http import original_shapes as shapes
from crmd.http.bodies import REPLACED_BODY, read_json
from crmd.http.describe import Media, description_of, route_template
from crmd.http.forms import read_form
from crmd.http.openapi import AliasDoc
from crmd.http.responses import plain_json

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
    fields: Mapping[str, str] | None = None
    """An error naming crmd's field (``$.segmentId``) names the original's instead."""
    doc: AliasDoc | None = None
    """What it takes and answers where that is not what crmd's route does."""
    fixed: Mapping[str, str] | None = None
    """The path parameters of crmd's route that the original's fixed path stands for."""


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


DETAILS = "compaignDetails"
CAMPAIGN_FIELDS = {
    "name": "name",
    "message": "message",
    "intent": "intent",
    "rule": "rule",
    "ruleId": "segmentId",
    "segmentId": "segmentId",
    "vendor": "vendor",
    "scheduledAt": "scheduledAt",
}
"""The original's campaign fields, and crmd's name for each."""
CAMPAIGN_ERRORS = {
    **{f"$.{crmd}": f"$.{DETAILS}.{original}" for original, crmd in CAMPAIGN_FIELDS.items()},
    "$.segmentId": f"$.{DETAILS}.ruleId",
    "rule": f"$.{DETAILS}.ruleId",
}
"""An error about crmd's field names the field the original client sent."""


async def _campaign_details(request: web.Request) -> bytes | None:
    """``{"compaignDetails": {...}}`` (JSON, or form fields named ``compaignDetails[name]``
    as axios sends an object) is the campaign itself, its ``ruleId`` a segment. Its
    ``status`` may only be ``"draft"`` (the original never sent on create; crmd sends
    unless told to keep a draft): any other value is refused rather than guessed."""
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        body = await read_form(request, nested=True)
    else:
        body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get(DETAILS), dict):
        raise BadRequest(f'send {{"{DETAILS}": {{...}}}}', details={"field": f"$.{DETAILS}"})
    details = body[DETAILS]
    for key in details:
        if key not in CAMPAIGN_FIELDS and key != "status":
            raise Unprocessable(
                f"{DETAILS} has no field {key[:40]!r}; it takes "
                f"{', '.join([*CAMPAIGN_FIELDS, 'status'])}",
                code="invalid_body",
                details={"field": f"$.{DETAILS}.{key[:40]}"},
            )
    if "ruleId" in details and "segmentId" in details:
        raise Unprocessable(
            "send ruleId or segmentId, not both",
            code="invalid_body",
            details={"field": f"$.{DETAILS}.ruleId"},
        )
    for required in ("name", "message"):
        if required not in details:
            raise Unprocessable(
                f"a campaign needs a {required}",
                code="invalid_body",
                details={"field": f"$.{DETAILS}.{required}"},
            )
    campaign = {CAMPAIGN_FIELDS[k]: v for k, v in details.items() if k != "status"}
    if "status" in details:
        if details["status"] != "draft":
            raise Unprocessable(
                f'status may only be "draft" (save it without sending), not '
                f"{str(details['status'])[:40]!r}; leave it out to send the campaign",
                code="invalid_body",
                details={"field": f"$.{DETAILS}.status"},
            )
        campaign["draft"] = True
    return _encoded(campaign)


def fields_taken(handler: Handler) -> frozenset[str] | None:
    """The fields of the JSON body crmd's ``handler`` declares (None: it takes none)."""
    operation = description_of(handler)
    body = operation.body if operation is not None else None
    values = body if isinstance(body, tuple) and not isinstance(body, Media) else (body,)
    for value in values:
        if isinstance(value, type) and issubclass(value, msgspec.Struct):
            return _stored_names(value)
    return None


@functools.cache  # once a type: msgspec reads the annotations again on every call
def _stored_names(struct: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(field.encode_name for field in msgspec.structs.fields(struct))


async def _without_other_fields(request: web.Request, taken: frozenset[str]) -> bytes | None:
    """The body without the fields crmd's route does not take. crmd refuses an unknown
    field; the original backend ignored them and its clients send some (a segment's
    ``conditions`` and ``logicType``), so on their routes they are left out instead. A
    body that is not JSON is refused as crmd's handler would (400 ``bad_json``, also
    when nested too deeply to read, in a field left out or not); one that is not an
    object is left for the handler to refuse."""
    body = await read_json(request)
    if not isinstance(body, dict) or body.keys() <= taken:
        return None
    return _encoded({k: v for k, v in body.items() if k in taken})


def _from_query_or_body(
    *fields: str, rename: Mapping[str, str] | None = None, extra: Mapping[str, Json] | None = None
) -> BodyRewrite:
    """The original sent these fields in the query string (or as a JSON body on a GET):
    crmd's route takes them as a JSON body, some under other names."""

    async def rewrite(request: web.Request) -> bytes | None:
        given: dict[str, Json] = {k: v for k, v in request.query.items() if k in fields}
        if not given and request.can_read_body:
            body = await read_json(request)
            if not isinstance(body, dict):
                raise BadRequest(f"send a JSON object with {', '.join(fields)}")
            given = {k: v for k, v in body.items() if k in fields}
        if not given:
            raise BadRequest(
                f"send {', '.join(fields)} in the query string or as a JSON object",
                details={"field": f"$.{fields[0]}"},
            )
        names = rename or {}
        return _encoded({**(extra or {}), **{names.get(k, k): v for k, v in given.items()}})

    return rewrite


V1 = "/api/v1"
SEGMENT_DOC = AliasDoc(body=shapes.OriginalSegment, keeps_body=True)
"""Either crmd's body or the original's ``{"segment_rule": {...}}``."""
_message_request = _from_query_or_body("name", "rule", rename={"name": "objective"}, extra={"n": 1})
ALIASES: tuple[Alias, ...] = (
    Alias("POST", f"{V1}/segment", ("POST", f"{V1}/segments"), _segment_body, doc=SEGMENT_DOC),
    Alias("GET", f"{V1}/segment", ("GET", f"{V1}/segments")),
    Alias("GET", f"{V1}/segment/{{id}}", ("GET", f"{V1}/segments/{{id}}")),
    Alias(
        "PUT",
        f"{V1}/segment/{{id}}",
        ("PUT", f"{V1}/segments/{{id}}"),
        _segment_body,
        doc=SEGMENT_DOC,
    ),
    Alias("DELETE", f"{V1}/segment/{{id}}", ("DELETE", f"{V1}/segments/{{id}}")),
    Alias("POST", f"{V1}/segment/preview", ("POST", f"{V1}/segments/preview")),
    Alias(
        "GET",
        f"{V1}/audience/preview",
        ("POST", f"{V1}/segments/preview"),
        _from_query_or_body("rule", extra={"ids": True}),
        shapes.audience_details,
        doc=AliasDoc(body=None, query=shapes.AudienceQuery, answer=shapes.OriginalPreview),
    ),
    # The original frontend's segment page posts to `${baseURL}/api/v1/segment`.
    Alias(
        "POST", f"{V1}/api/v1/segment", ("POST", f"{V1}/segments"), _segment_body, doc=SEGMENT_DOC
    ),
    Alias("POST", f"{V1}/compaigns", ("POST", f"{V1}/campaigns")),
    Alias(
        "POST",
        f"{V1}/compaign",
        ("POST", f"{V1}/campaigns"),
        _campaign_details,
        fields=CAMPAIGN_ERRORS,
        doc=AliasDoc(
            body=(
                shapes.OriginalCampaignBody,
                Media(
                    "application/x-www-form-urlencoded",
                    {"type": "object", "additionalProperties": {"type": "string"}},
                    "fields named compaignDetails[name], compaignDetails[message]...",
                ),
            )
        ),
    ),
    Alias("GET", f"{V1}/compaigns/getCompaign", ("GET", f"{V1}/campaigns")),
    Alias("GET", f"{V1}/compaign/getCompaigns", ("GET", f"{V1}/campaigns")),
    # Two fixed paths: a template /uploads/{kind} would be /uploads/{id}'s (GET) twin.
    *(
        Alias(
            "POST", f"{V1}/uploads/{kind}", ("POST", f"{V1}/upload/{{kind}}"), fixed={"kind": kind}
        )
        for kind in ("customers", "orders")
    ),
    Alias("POST", "/api/receipt", ("POST", f"{V1}/deliveryReceipt")),
    Alias(
        "GET",
        f"{V1}/user/oauth",
        ("POST", f"{V1}/user/oauth"),
        _from_query_or_body("code", "credential"),
        doc=AliasDoc(body=None, query=shapes.OAuthQuery),
    ),
    Alias(
        "POST",
        "/api/generateMessage",
        ("POST", f"{V1}/ai/messages"),
        _message_request,
        shapes.generated_message,
        fields={"$.objective": "$.name"},
        doc=AliasDoc(body=shapes.MessageRequest, answer=shapes.GeneratedMessage),
    ),
    Alias(
        "GET",
        f"{V1}/generateMessage",
        ("POST", f"{V1}/ai/messages"),
        _message_request,
        shapes.generated_message,
        fields={"$.objective": "$.name"},
        doc=AliasDoc(body=None, query=shapes.MessageRequest, answer=shapes.GeneratedMessage),
    ),
)


SHAPES: dict[tuple[str, str], Callable[[Json], Json]] = {
    ("GET", f"{V1}/customers"): shapes.listed,
    ("GET", f"{V1}/orders"): shapes.listed,
    ("GET", f"{V1}/segments"): shapes.listed_segments,
    ("GET", f"{V1}/segment"): shapes.listed_segments,
    ("GET", f"{V1}/compaign/getCompaigns"): shapes.listed,
    ("GET", f"{V1}/compaigns/getCompaign"): shapes.listed,
    ("POST", f"{V1}/segments"): shapes.created,
    ("POST", f"{V1}/segment"): shapes.created,
    ("POST", f"{V1}/api/v1/segment"): shapes.created,
    ("POST", f"{V1}/compaign"): shapes.saved_campaign,
    ("POST", f"{V1}/campaigns"): shapes.saved_campaign,
    ("GET", f"{V1}/campaigns"): shapes.listed,
    ("GET", f"{V1}/dashboard-summary"): shapes.totals,
    ("POST", f"{V1}/uploads/customers"): shapes.uploaded,
    ("POST", f"{V1}/uploads/orders"): shapes.uploaded,
}
"""Answers reshaped for the original clients, who sign in as the original backend
wanted (``x-access-token``, not ``Authorization``), on its paths and on crmd's. The
original fields are added; crmd's stay, and a crmd client sees none of them."""


def original_client(request: web.Request) -> bool:
    return bool(request.headers.get(ORIGINAL_TOKEN_HEADER)) and not request.headers.get(
        "Authorization"
    )


FULL_LISTS = {
    key for key, shape in SHAPES.items() if shape in (shapes.listed, shapes.listed_segments)
}


@web.middleware
async def original_shapes(request: web.Request, handler: Handler) -> web.StreamResponse:
    shape = SHAPES.get((request.method, route_template(request)))
    if shape is None or not original_client(request):
        return await handler(request)
    return _reshaped(await handler(request), shape)


@web.middleware
async def whole_lists(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An original client's list call without paging is answered whole (after sign-in:
    it holds one of the user's read slots)."""
    key = (request.method, route_template(request))
    if key in FULL_LISTS and original_client(request) and original_lists.wants_all(request):
        return await original_lists.in_full(request, handler)
    return await handler(request)


def _reshaped(response: web.StreamResponse, shape: Callable[[Json], Json]) -> web.StreamResponse:
    """A successful JSON answer through ``shape``; anything else as it is."""
    if not isinstance(response, web.Response) or not 200 <= response.status < 300:
        return response
    if not isinstance(response.body, bytes) or response.content_type != "application/json":
        return response
    reshaped = plain_json(shape(msgspec.json.decode(response.body)), response.status)
    for name in ("Retry-After", "Location"):
        if name in response.headers:
            reshaped.headers[name] = response.headers[name]
    return reshaped


def alias_handler(alias: Alias, handler: Handler) -> Handler:
    """crmd's ``handler`` behind the original's path: the body rewritten on the way in
    (fields crmd's body does not take left out), a successful answer reshaped on the
    way out. Marks on the handler (``@public``) carry over."""
    taken = fields_taken(handler)

    @functools.wraps(handler)
    async def original(request: web.Request) -> web.StreamResponse:
        if alias.fixed:
            request.match_info.update(alias.fixed)
        if alias.body is not None:
            replaced = await alias.body(request)
            if replaced is not None:
                request[REPLACED_BODY] = replaced
        if taken is not None and REPLACED_BODY not in request and request.body_exists:
            kept = await _without_other_fields(request, taken)
            if kept is not None:
                request[REPLACED_BODY] = kept
        try:
            response = await handler(request)
        except CrmdError as exc:
            if alias.fields and isinstance(exc.details, dict):
                field = exc.details.get("field")
                if isinstance(field, str) and field in alias.fields:
                    exc.details = {**exc.details, "field": alias.fields[field]}
            raise
        if alias.answer is None or not isinstance(response, web.Response):
            return response
        if not 200 <= response.status < 300 or not isinstance(response.body, bytes):
            return response
        return plain_json(alias.answer(msgspec.json.decode(response.body)), response.status)

    return original


def add_aliases(app: web.Application) -> dict[tuple[str, str], AliasDoc]:
    """Register every original route on ``app``, whose own routes are already there;
    returns each one's description (for the API's document)."""
    handlers = {
        (route.method, route.resource.canonical): route.handler
        for route in app.router.routes()
        if route.resource is not None
    }
    table = {}
    for alias in ALIASES:
        handler = handlers[alias.of]
        app.router.add_route(alias.method, alias.path, alias_handler(alias, handler))
        canonical = alias.path
        doc = alias.doc or AliasDoc()
        table[(alias.method, canonical)] = doc._replace(of=alias.of)
    return table
