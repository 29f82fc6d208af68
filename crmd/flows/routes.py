"""Flows over HTTP: parse, call the service, answer."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from crmd.auth.requests import caller, tenant_store
from crmd.errors import NotFound
from crmd.flows.model import FlowBody, FlowChange
from crmd.flows.schema import Flow, FlowFilter, FlowList, FlowRecord, FlowVersion
from crmd.flows.service import counts_of, flow_by_id, flow_read, flow_view, version_of
from crmd.http.bodies import json_body
from crmd.http.describe import Link, described
from crmd.http.keys import FLOWS
from crmd.http.pages import DEFAULT_LIMIT, Limit, before_cursor, choice, read_page
from crmd.http.responses import json_response
from crmd.store.documents import decode_all
from crmd.store.tenant import TenantStore
from crmd.store.windows import newest
from crmd.workspaces.guard import audited
from crmd.workspaces.roles import SEND

routes = web.RouteTableDef()
STATUSES = ("draft", "active", "paused", "archived", "all")


class FlowListQuery(msgspec.Struct):
    limit: Limit = DEFAULT_LIMIT
    status: FlowFilter | None = None
    """Only flows in this status; by default all but the archived ones."""
    cursor: Annotated[str, msgspec.Meta(pattern="^[0-9]{1,15}$")] | None = None


class VersionPath(msgspec.Struct):
    id: str
    n: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]


FLOW_LINKS = {
    "get": Link("get_flow", {"id": "$response.body#/id"}),
    "change": Link("change_flow", {"id": "$response.body#/id"}),
    "activate": Link("activate_flow", {"id": "$response.body#/id"}),
    "pause": Link("pause_flow", {"id": "$response.body#/id"}),
    "archive": Link("archive_flow", {"id": "$response.body#/id"}),
}


async def answer(store: TenantStore, flow: FlowRecord, status: int = 200) -> web.Response:
    return json_response(await flow_read(store, flow), status=status)


@routes.post("/api/v1/flows")
@described(
    "Create a flow (a draft, or active at once)",
    tag="flows",
    body=FlowBody,
    ok={201: Flow},
    links=FLOW_LINKS,
)
async def create_flow(request: web.Request) -> web.Response:
    """Active at once needs the ``send`` permission; a draft, ``write``. The flow is
    checked whole before anything is stored: a refusal (422) names the
    field as a JSON path (``$.steps[2].branch.yes[0].wait``), and its column in a rule
    or a template."""
    body = await json_body(request, FlowBody)
    if body.status == "active":  # a live flow sends: an editor makes drafts
        caller(request).require(SEND)
    store = tenant_store(request)
    flow = await request.app[FLOWS].create(store, body)
    if flow.status == "active":  # made and activated at once: the log says both
        audited(request, str(flow.id), "flow.activated")
    return await answer(store, flow, 201)


@routes.get("/api/v1/flows")
@described("List flows, newest first", tag="flows", ok=FlowList, query=FlowListQuery)
async def list_flows(request: web.Request) -> web.Response:
    """A range of the newest flows, each with its counts (two aggregations for the
    page). Archived flows are left out unless ``status`` asks for them."""
    page = read_page(request, keyset=False)
    status = choice(request, "status", STATUSES)
    where = (
        {"status": {"$ne": "archived"}}
        if status is None
        else {}
        if status == "all"
        else {"status": status}
    )
    store = tenant_store(request)
    found = await newest(
        store["flows"],
        await store.highest("flows"),
        before=before_cursor(request),
        limit=page.limit,
        where=where,
    )
    flows = decode_all(found.items, FlowRecord)
    counts = await counts_of(store, [str(f.id) for f in flows])
    total = await store["flows"].count_documents(where)
    following = found.next_before
    return json_response(
        FlowList(
            [flow_view(f, counts[str(f.id)]) for f in flows],
            total,
            None if following is None else str(following),
        )
    )


@routes.get("/api/v1/flows/{id}")
@described(
    "A flow: its current definition and version, its versions, its counts and each step's runs",
    tag="flows",
    ok=Flow,
)
async def get_flow(request: web.Request) -> web.Response:
    store = tenant_store(request)
    return await answer(store, await flow_by_id(store, request.match_info["id"]))


@routes.get("/api/v1/flows/{id}/versions/{n}")
@described("One version of a flow, as it was made", tag="flows", ok=FlowVersion, path=VersionPath)
async def get_flow_version(request: web.Request) -> web.Response:
    raw = request.match_info["n"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 7:
        raise NotFound(f"flow {request.match_info['id']!r} has no version {raw[:20]!r}")
    found = await version_of(tenant_store(request), request.match_info["id"], int(raw))
    return json_response(found)


@routes.patch("/api/v1/flows/{id}")
@described(
    "Change a flow: a change to an active flow's definition makes a new version",
    tag="flows",
    body=FlowChange,
    ok=Flow,
    errors=(409,),
    links=FLOW_LINKS,
)
async def change_flow(request: web.Request) -> web.Response:
    """The fields given replace the flow's. A flow never activated is edited in place
    (its version 1); once activated, a change to entry, reentryDays, trigger, steps,
    goal or quietHours makes the next version, and customers already inside finish the
    version they entered. A name or a status alone makes none. Changing an active or
    paused flow, or its status, needs the ``send`` permission."""
    body = await json_body(request, FlowChange)
    store = tenant_store(request)
    current = await flow_by_id(store, request.match_info["id"])
    if current.status in ("active", "paused") or body.status in ("active", "paused"):
        caller(request).require(SEND)  # what a live flow sends, or whether it sends
    flow = await request.app[FLOWS].change(store, request.match_info["id"], body)
    if body.status == "active" and current.status != "active":
        audited(request, str(flow.id), "flow.activated")
    return await answer(store, flow)


@routes.post("/api/v1/flows/{id}/activate")
@described(
    "Activate a draft or a paused flow", tag="flows", ok=Flow, errors=(409,), links=FLOW_LINKS
)
async def activate_flow(request: web.Request) -> web.Response:
    """Its definition is checked again (a segment or a vendor may have gone): 422
    naming the field if it cannot run; 409 if it is active or archived."""
    store = tenant_store(request)
    return await answer(store, await request.app[FLOWS].activate(store, request.match_info["id"]))


@routes.post("/api/v1/flows/{id}/pause")
@described("Pause an active flow", tag="flows", ok=Flow, errors=(409,), links=FLOW_LINKS)
async def pause_flow(request: web.Request) -> web.Response:
    """No one enters a paused flow, and those inside stay where they are until it is
    activated again; 409 unless it is active."""
    store = tenant_store(request)
    return await answer(store, await request.app[FLOWS].pause(store, request.match_info["id"]))


@routes.delete("/api/v1/flows/{id}")
@described("Archive a flow", tag="flows", ok=Flow, errors=(409,))
async def archive_flow(request: web.Request) -> web.Response:
    """It stops for good and leaves the list, but is kept (with its versions): its
    customers' states and step logs refer to it. 409 if it is archived already."""
    store = tenant_store(request)
    return await answer(store, await request.app[FLOWS].archive(store, request.match_info["id"]))
