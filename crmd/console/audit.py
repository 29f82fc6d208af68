"""The audit log's page: the API's filters as a form, a page of entries newest first
with a link to the older ones, and the same entries as a CSV download. For those who
may manage the workspace (``crmd.workspaces.roles``)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.console.web import render
from crmd.errors import CrmdError
from crmd.workspaces.audit_query import audit_page, csv_response, read_query
from crmd.workspaces.audit_schema import AuditEntry, AuditQuery
from crmd.workspaces.roles import API

routes = web.RouteTableDef()
PAGE = 50
FILTERS = ("action", "who", "objectId", "outcome", "since", "until")
PAGES = {"campaign": "/campaigns", "segment": "/segments", "flow": "/flows", "import": "/imports"}
"""Where an object of each kind has a page of its own."""
_ID = re.compile(r"[0-9a-f]{24}")


def action_names() -> list[str]:
    """Every action the log can hold, and each kind's prefix (``campaign.``)."""
    names = {rule.audit for rule in API.values() if rule.audit}
    return sorted(names | {name.split(".")[0] + "." for name in names})


def object_page(entry: AuditEntry) -> str | None:
    kind = entry.action.split(".")[0]
    deleted = entry.action == "segment.deleted"
    if kind in PAGES and _ID.fullmatch(entry.objectId) and not deleted:
        return f"{PAGES[kind]}/{entry.objectId}"
    return None


@routes.get("/audit")
async def audit(request: web.Request) -> web.Response:
    given = {name: request.query.get(name, "") for name in FILTERS}
    context: dict[str, Any] = {
        "given": given,
        "actions": action_names(),
        "items": [],
        "problem_field": None,
        "object_page": object_page,
    }
    status = 200
    try:
        query = read_query({**given, "limit": str(PAGE), "cursor": request.query.get("cursor", "")})
        found = await audit_page(tenant_store(request), query)
    except CrmdError as exc:  # the form again, saying what is wrong, beside its field
        status = exc.status
        field = exc.details.get("field") if isinstance(exc.details, dict) else None
        context.update(problem=exc.message, problem_field=field)
    else:
        kept = {name: value for name, value in given.items() if value}
        context.update(
            items=found.items,
            older=_address("/audit", {**kept, "cursor": found.cursor}) if found.cursor else None,
            newest=_address("/audit", kept) if query.cursor else None,
            download=_address("/audit.csv", kept),
        )
    return render(request, "audit.html", context, status=status, section="Audit")


@routes.get("/audit.csv")
async def audit_csv(request: web.Request) -> web.StreamResponse:
    query: AuditQuery = read_query(request.query)
    return await csv_response(request, tenant_store(request), query)


def _address(path: str, query: dict[str, str]) -> str:
    return f"{path}?{urlencode(query)}" if query else path
