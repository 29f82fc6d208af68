"""API keys: the workspace's keys listed, a form to make one, and a button to revoke
each live one (``manage`` only, as for the API).

A new key is shown in the answer to the form's POST itself, not after a redirect as
the console's other forms do: a redirect would need the key kept somewhere for the
page after it, and crmd keeps a key nowhere, Redis included. The form carries a
one-time token, so sending it again (a reload of that answer) makes no second key."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from crmd.auth.requests import caller, tenant_id, tenant_store
from crmd.console import stash
from crmd.console.campaigns import stash_redis
from crmd.console.web import form, render, see_other
from crmd.errors import CrmdError
from crmd.http.keys import API_KEYS
from crmd.workspaces.guard import audited
from crmd.workspaces.keys import expiry
from crmd.workspaces.roles import SCOPES
from crmd.workspaces.schema import CreatedKey, CreateKey, KeyMaker

routes = web.RouteTableDef()
HOME = "/keys"
SECTION = "API keys"
SCOPE_WORDS = {
    "read": "see customers, orders, segments, campaigns and their figures",
    "write": "change segments, drafts, suppressions and customers",
    "send": "send campaigns and messages, start and stop flows",
    "import": "load customers, orders and events",
}
FORM_TOKEN = "once"


async def _page(
    request: web.Request,
    *,
    made: CreatedKey | None = None,
    problem: str = "",
    typed: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    service = request.app[API_KEYS]
    items, total = await service.list(tenant_store(request))
    live = sum(1 for k in items if k.state == "live")
    context = {
        "items": items,
        "total": total,
        "limit": service.max_live,
        "full": live >= service.max_live,
        "scopes": SCOPE_WORDS,
        "made": made,
        "typed": typed or {"scopes": ["read"]},
        "once": secrets.token_urlsafe(12),
    }
    if problem:
        context["problem"] = problem
    return render(request, "keys.html", context, status=status, section=SECTION)


@routes.get("/keys")
async def keys(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/keys")
async def create(request: web.Request) -> web.Response:
    fields = await form(request)
    name, expires = fields.get("name", ""), fields.get("expires", "")
    scopes = [s for s in SCOPES if fields.get(f"scope-{s}")]
    typed = {"name": name, "scopes": scopes, "expires": expires}
    once = fields.get(FORM_TOKEN, "")
    if not once or not await stash.first_use(stash_redis(request), tenant_id(request), once):
        return await _page(
            request,
            problem="This form was sent already, and its key shown then, once. If it was "
            "lost, revoke that key and make another.",
            status=409,
        )
    who = caller(request)
    try:
        until = expiry(expires, datetime.now(UTC))
        body = msgspec.convert({"name": name, "scopes": scopes, "expiresAt": until}, CreateKey)
        made = await request.app[API_KEYS].create(
            tenant_store(request), body, KeyMaker("console", who.user, who.email)
        )
    except msgspec.ValidationError as exc:
        return await _page(request, problem=_said(exc), typed=typed, status=422)
    except CrmdError as exc:
        return await _page(request, problem=exc.message, typed=typed, status=exc.status)
    audited(request, made.id)
    return await _page(request, made=made)


def _said(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    if "$.scopes" in text:
        return "Choose at least one thing the key may do."
    if "$.name" in text:
        return "A key needs a name of 1 to 80 characters."
    return text


@routes.post("/keys/{id}/revoke")
async def revoke(request: web.Request) -> web.Response:
    who = caller(request)
    gone = await request.app[API_KEYS].revoke(
        tenant_store(request), request.match_info["id"], KeyMaker("console", who.user, who.email)
    )
    audited(request, request.match_info["id"])
    return see_other(HOME, f"The key {gone.name!r} is revoked: it works no more.")
