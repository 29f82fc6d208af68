"""``/api/v1/audit``: the workspace's audit log, a page at a time or whole as CSV. Both
need the ``manage`` permission (``crmd.workspaces.roles``)."""

from __future__ import annotations

from aiohttp import web

from crmd.http.describe import Media, described
from crmd.http.responses import json_response
from crmd.workspaces.audit_query import CSV_COLUMNS, audit_page, csv_response, read_query
from crmd.workspaces.audit_schema import AuditList, AuditQuery
from crmd.workspaces.requests import tenant_store

routes = web.RouteTableDef()


@routes.get("/api/v1/audit")
@described(
    "The audit log, newest first", tag="audit", ok=AuditList, query=AuditQuery, errors=(422,)
)
async def list_audit(request: web.Request) -> web.Response:
    """Who did what, when, from where, on which object, with the names of the fields
    sent; refused attempts at a recorded action too (``outcome: refused``, with the
    ``reason``). The filters combine; ``action`` ending in a dot is a prefix
    (``campaign.``); ``who`` is a person's user id or e-mail address, or a key's id. A
    filter that is not one, or a bad value, is 422 naming it in ``details.field``."""
    query = read_query(request.query)
    return json_response(await audit_page(tenant_store(request), query))


@routes.get("/api/v1/audit.csv")
@described(
    "The audit log as CSV",
    tag="audit",
    ok=Media("text/csv", {"type": "string"}, ", ".join(CSV_COLUMNS)),
    query=AuditQuery,
    errors=(422,),
)
async def audit_csv(request: web.Request) -> web.StreamResponse:
    """Every entry the filters match (``limit`` and ``cursor`` are left aside), newest
    first, streamed. ``fields`` holds the field names separated by spaces; a cell that a
    spreadsheet would take for a formula starts with ``'``."""
    query = read_query(request.query)
    return await csv_response(request, tenant_store(request), query)
