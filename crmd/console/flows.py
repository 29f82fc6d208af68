"""Flows: the list with each flow's counts, the editor (new and edit: the trigger and the
steps as rows of fields, branches' arms as rows inside their step), a flow's page (its
definition in words, each step's runs and delivery figures, its versions, the messages
it sent) and the moves of its lifecycle (activate, pause, archive).

The editor is one form that works without script: its own moves (add a step, remove
or move one) post the form and come back to it as it was left, kept in ``stash``
(Post/Redirect/Get); the page's stylesheet shows each row's fields for the kind chosen
in it. The service's refusals name a JSON path, read back to the field it names."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from crmd.auth.requests import caller, tenant_id, tenant_store
from crmd.console import stash
from crmd.console.flow_form import (
    KINDS,
    MAX_BRANCH_DEPTH,
    MAX_FORM_FIELDS,
    TOP_FIELDS,
    TRIGGERS,
    Row,
    body_of,
    moved,
    rows_of,
    values_of,
)
from crmd.console.flow_messages import flow_messages
from crmd.console.flow_mistakes import key_of, mistake, said_key
from crmd.console.flow_words import (
    entry_words,
    goal_words,
    quiet_words,
    step_lines,
    trigger_words,
)
from crmd.console.formats import money
from crmd.console.web import (
    CONSOLE,
    CSRF_FIELD,
    check_csrf,
    checks_own_csrf,
    form,
    render,
    see_other,
)
from crmd.errors import BadRequest, CrmdError
from crmd.flows.model import FlowChange
from crmd.flows.schema import FlowRecord
from crmd.flows.service import actions_of, counts_of, flow_by_id, flow_read
from crmd.http.forms import read_form
from crmd.http.keys import CAMPAIGNS, FLOWS, HEALTH
from crmd.store.documents import SegmentSummary, decode_all, projection
from crmd.store.tenant import TenantStore
from crmd.store.windows import newest
from crmd.workspaces.guard import audited
from crmd.workspaces.roles import SEND

routes = web.RouteTableDef()
LIST_PAGE = 50
DELIVERY = ("pending", "sent", "delivered", "failed", "suppressed")
"""A send step's figures the flow's page shows (its campaign's ``stats``)."""
MOVES = {"activate": "Activated", "pause": "Paused", "archive": "Archived"}


async def segment_names(store: TenantStore) -> dict[str, str]:
    """The user's newest segments' names by id (what a segment trigger may name)."""
    found = await newest(
        store["segments"],
        await store.highest("segments"),
        limit=200,
        projection=projection(SegmentSummary),
    )
    return {str(s.id): s.name for s in decode_all(found.items, SegmentSummary)}


def _currency(request: web.Request) -> Any:
    currency = request.app[CONSOLE].currency
    return lambda value: money(value, currency)


@routes.get("/flows")
async def flows(request: web.Request) -> web.Response:
    store = tenant_store(request)
    archived = request.query.get("archived") == "1"
    where = {"status": "archived"} if archived else {"status": {"$ne": "archived"}}
    before = request.query.get("before", "")
    if before and not (before.isascii() and before.isdigit() and len(before) < 16):
        raise BadRequest("before must be a whole number", details={"field": "before"})
    window = await newest(
        store["flows"],
        await store.highest("flows"),
        before=int(before) if before else None,
        limit=LIST_PAGE,
        where=where,
    )
    found = decode_all(window.items, FlowRecord)
    counts = await counts_of(store, [str(f.id) for f in found])
    names = await segment_names(store)
    written = _currency(request)
    items = [
        {
            "flow": f,
            "counts": counts[str(f.id)],
            "trigger": trigger_words(f.definition.trigger, names, written),
        }
        for f in found
    ]
    base = "/flows?archived=1" if archived else "/flows"
    return render(
        request,
        "flows.html",
        {
            "items": items,
            "archived": archived,
            "base": base,
            "page": {
                "first": not before,
                "next": window.next_before,
                "said": f"{len(items)} flow{'s' if len(items) != 1 else ''}" if items else "",
            },
        },
        section="Flows",
    )


# The editor


def _rows(rows: list[Row], prefix: str = "", depth: int = 0) -> list[dict[str, Any]]:
    """The form's rows as the template draws them."""
    drawn = []
    for i, row in enumerate(rows):
        key = f"{prefix}{i}"
        drawn.append(
            {
                "key": key,
                "said": said_key(key),
                "f": row.fields,
                "first": i == 0,
                "last": i == len(rows) - 1,
                "depth": depth,
                "yes": _rows(row.yes, f"{key}-yes-", depth + 1),
                "no": _rows(row.no, f"{key}-no-", depth + 1),
            }
        )
    return drawn


async def _form_page(
    request: web.Request,
    values: dict[str, str],
    flow: FlowRecord | None,
    error: dict[str, Any] | None = None,
) -> web.Response:
    store = tenant_store(request)
    vendors = request.app[CAMPAIGNS].vendors
    context = {
        "title": f"Edit {flow.name}" if flow else "New flow",
        "flow": flow,
        "moves": actions_of(flow.status) if flow else [],
        "action_url": f"/flows/{flow.id}/edit" if flow else "/flows/new",
        "form": {name: values.get(name, "") for name in TOP_FIELDS},
        "rows": _rows(rows_of(values)),
        "kinds": KINDS,
        "triggers": TRIGGERS,
        "max_depth": MAX_BRANCH_DEPTH,
        "segments": list((await segment_names(store)).items()),
        "vendors": list(vendors.by_name),
        "default_vendor": vendors.default or "",
        "error": error,
        "field_error": error if error and error.get("field") != "form" else None,
    }
    return render(request, "flow_form.html", context, section="Flows")


async def _stashed(request: web.Request) -> dict[str, Any] | None:
    token = request.query.get("form", "")
    if not token:
        return None
    redis = request.app[HEALTH].redis
    return await stash.kept(redis, tenant_id(request), token)


async def _back_to_form(
    request: web.Request, here: str, values: dict[str, str], anchor: str = "", **state: Any
) -> web.Response:
    """Redirect to the form as this POST leaves it (Post/Redirect/Get)."""
    redis = request.app[HEALTH].redis
    token = await stash.keep(redis, tenant_id(request), {"values": values, **state})
    return see_other(f"{here}?form={token}{anchor}")


@routes.get("/flows/new")
async def new_flow(request: web.Request) -> web.Response:
    """The form: an event trigger and one wait to start from; with ``?form=``, as the
    last POST left it."""
    if request.query.get("form"):
        state = await _stashed(request)
        if state is None:
            return see_other("/flows/new", "That form is more than an hour old: start again.")
        return await _form_page(request, state["values"], None, state.get("error"))
    start = {"entry": "once", "trigger": "event", "step-0-kind": "wait"}
    return await _form_page(request, start, None)


@routes.get("/flows/{id}/edit")
async def edit_flow(request: web.Request) -> web.Response:
    store = tenant_store(request)
    flow = await flow_by_id(store, request.match_info["id"])
    if request.query.get("form"):
        state = await _stashed(request)
        if state is None:
            return see_other(
                f"/flows/{flow.id}/edit", "That form is more than an hour old: start again."
            )
        return await _form_page(request, state["values"], flow, state.get("error"))
    return await _form_page(request, values_of(flow.name, flow.definition), flow)


@routes.post("/flows/new")
@checks_own_csrf
async def create_flow(request: web.Request) -> web.Response:
    return await _posted(request, await _editor_form(request), None)


@routes.post("/flows/{id}/edit")
@checks_own_csrf
async def save_flow(request: web.Request) -> web.Response:
    fields = await _editor_form(request)
    flow = await flow_by_id(tenant_store(request), request.match_info["id"])
    return await _posted(request, fields, flow)


async def _editor_form(request: web.Request) -> dict[str, Any]:
    """The editor's fields (a row of them per step: more than other forms have), its
    CSRF token checked first."""
    fields = await read_form(request, max_fields=MAX_FORM_FIELDS)
    check_csrf(request, fields.get(CSRF_FIELD))
    return fields


async def _posted(
    request: web.Request, fields: dict[str, Any], flow: FlowRecord | None
) -> web.Response:
    """The editor's POST: a move of its own (back to the form), or a save."""
    action = str(fields.get("action", ""))
    values = {k: str(v) for k, v in fields.items() if k in TOP_FIELDS or k.startswith("step-")}
    here = f"/flows/{flow.id}/edit" if flow else "/flows/new"
    if action == "keep":  # the Enter key in a field: the form again, nothing saved
        return await _back_to_form(request, here, values)
    if action.partition(":")[0] in ("add", "remove", "up", "down"):
        after = moved(values, action)
        anchor = ""
        if action.startswith("add:"):
            prefix = action.removeprefix("add:")
            anchor = f"#step-{prefix}{len(rows_of(after, prefix)) - 1}"
        return await _back_to_form(request, here, after, anchor)
    if action not in ("draft", "activate", "save"):
        raise BadRequest("unknown action")
    if action == "activate" or (flow is not None and flow.status in ("active", "paused")):
        caller(request).require(SEND)  # as the API: a live flow is sending
    store = tenant_store(request)
    service = request.app[FLOWS]
    try:
        body = body_of(values, "active" if action == "activate" and flow is None else "draft")
        if flow is None:
            done = await service.create(store, body)
        else:
            change = FlowChange(
                name=body.name,
                entry=body.entry,
                reentryDays=body.reentryDays,
                trigger=body.trigger,
                steps=body.steps,
                goal=body.goal,
                quietHours=body.quietHours,
                status="active" if action == "activate" and flow.status != "active" else None,
            )
            done = await service.change(store, str(flow.id), change)
    except CrmdError as exc:
        if exc.status == 404:
            raise
        return await _back_to_form(request, here, values, error=_refusal(exc), anchor="#problem")
    activated = done.status == "active" and (flow is None or flow.status != "active")
    audited(request, str(done.id), *(("flow.activated",) if activated else ()))
    return see_other(f"/flows/{done.id}", _saved(flow, done))


def _refusal(exc: CrmdError) -> dict[str, Any]:
    details = exc.details if isinstance(exc.details, dict) else {}
    path = details.get("field")
    if isinstance(path, str):
        return mistake(exc.message, path, details.get("column"))
    return {"message": exc.message, "field": "form", "said": exc.message, "column": None}


def _saved(before: FlowRecord | None, after: FlowRecord) -> str:
    if before is None:
        return (
            f"{after.name} is saved{' and active' if after.status == 'active' else ' as a draft'}."
        )
    said = f"{after.name} is saved"
    if after.version > before.version:
        said += (
            f" as version {after.version}; customers already inside finish version {before.version}"
        )
    if after.status == "active" and before.status != "active":
        said += ", and active"
    return said + "."


@routes.post("/flows/{id}/{move:activate|pause|archive}")
async def move_flow(request: web.Request) -> web.Response:
    await form(request)
    flow_id = request.match_info["id"]
    move = request.match_info["move"]
    store = tenant_store(request)
    try:
        done = await getattr(request.app[FLOWS], move)(store, flow_id)
    except CrmdError as exc:
        if exc.status == 404:
            raise
        return see_other(f"/flows/{quote(flow_id)}", _refusal(exc)["said"], problem=True)
    audited(request, str(done.id))
    return see_other(f"/flows/{done.id}", f"{MOVES[move]} {done.name}.")


# A flow's page


@routes.get("/flows/{id}")
async def flow_page(request: web.Request) -> web.Response:
    store = tenant_store(request)
    flow = await flow_by_id(store, request.match_info["id"])
    view = await flow_read(store, flow)
    runs = {s.path: s.runs for s in view.steps}
    sends = [
        c
        async for c in store["campaigns"].find(
            {"flowId": str(flow.id), "kind": "flow"},
            projection={"flowVersion": 1, "flowStep": 1, "stats": 1},
        )
    ]
    delivery = {
        c["flowStep"]: {k: int((c.get("stats") or {}).get(k, 0) or 0) for k in DELIVERY}
        for c in sends
        if c.get("flowVersion") == flow.version
    }
    steps_of = {str(c["_id"]): (c.get("flowVersion"), c.get("flowStep", "")) for c in sends}
    messages, page = await flow_messages(request, store, list(steps_of))
    for m in messages:
        m["version"], m["step"] = steps_of.get(m["campaignId"], (None, ""))
    names = await segment_names(store)
    definition = flow.definition
    return render(
        request,
        "flow.html",
        {
            "title": flow.name,
            "flow": flow,
            "view": view,
            "said": {
                "trigger": trigger_words(definition.trigger, names, _currency(request)),
                "entry": entry_words(definition),
                "goal": goal_words(definition.goal),
                "quiet": quiet_words(definition.quietHours),
            },
            "lines": step_lines(definition),
            "runs": runs,
            "delivery": delivery,
            "delivery_figures": DELIVERY,
            "messages": messages,
            "page": page,
            "key_of": key_of,
        },
        section="Flows",
    )
