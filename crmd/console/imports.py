"""Imports: the upload form, the recent uploads, and one upload's page, whose figures
follow the import live until it is done and which then lists the rejected rows."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.console.live import follow
from crmd.console.paging import numbered
from crmd.console.web import (
    CSRF_FIELD,
    check_csrf,
    checks_own_csrf,
    render,
    see_other,
)
from crmd.errors import CrmdError, Unprocessable
from crmd.http.keys import IMPORTS
from crmd.http.responses import plain_json
from crmd.ingest.rejected import rejected_rows_csv
from crmd.ingest.upload import SUMMARY, get_upload, upload_summary
from crmd.store.documents import Upload, UploadSummary, decode_all
from crmd.store.windows import newest
from crmd.workspaces.guard import audited

routes = web.RouteTableDef()
PAGE = 25
KINDS = ("customers", "orders")
ACTIVE = ("receiving", "queued", "processing")
SHOWN_ERRORS = 200
FORM_FIELDS = (CSRF_FIELD, "kind")


async def _page(request: web.Request, **extra: Any) -> web.Response:
    store = tenant_store(request)
    page = numbered(request, int((await store.tally())["uploads"]), PAGE)
    top = await store.highest("uploads")
    window = await newest(
        store["uploads"],
        top,
        before=await page.start(store["uploads"], top),
        limit=PAGE,
        projection=SUMMARY,
    )
    context = {
        "items": decode_all(window.items, UploadSummary),
        "page": page.context(len(window.items), "imports", "/imports"),
        "kind": "customers",
        "mapping": "",
        **extra,
    }
    return render(
        request, "imports.html", context, section="Imports", status=extra.get("status", 200)
    )


@routes.get("/imports")
async def imports(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/imports")
@checks_own_csrf
async def upload(request: web.Request) -> web.StreamResponse:
    """The file streams into the same reception as the API's upload; the form's CSRF
    token and kind come first, and are checked before the file is read."""

    def check(fields: dict[str, str]) -> str:
        check_csrf(request, fields.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token"))
        kind = fields.get("kind", "")
        if kind not in KINDS:
            raise Unprocessable(
                "choose customers or orders", code="invalid_kind", details={"field": "kind"}
            )
        return kind

    scripted = request.headers.get("Accept", "").startswith("application/json")
    try:
        _, answer = await request.app[IMPORTS].receive(
            request, None, tenant_store(request), (FORM_FIELDS, check)
        )
    except CrmdError as exc:
        if scripted or exc.code == "bad_csrf":
            raise
        problem = exc.message
        if isinstance(exc.details, dict) and exc.details.get("line"):
            problem += f" (line {exc.details['line']})"
        return await _page(request, problem=problem, status=exc.status)
    audited(request, answer["uploadId"])
    location = f"/imports/{answer['uploadId']}"
    if scripted:
        return plain_json({"location": location, **answer}, status=202)
    return see_other(location, "Received: every row is checked; the valid ones are being imported.")


async def _upload(request: web.Request) -> Upload:
    return await get_upload(tenant_store(request), request.match_info["id"])


@routes.get("/imports/{id}")
async def one_import(request: web.Request) -> web.Response:
    doc = await _upload(request)
    errors = doc.errors
    return render(
        request,
        "import.html",
        {
            "title": f"Import of {doc.fileName}",
            "u": doc,
            "live": doc.status in ACTIVE,
            "refresh": 2 if doc.status in ACTIVE else None,  # without script
            "errors": errors[:SHOWN_ERRORS],
            "more_errors": doc.rows.rejected > min(len(errors), SHOWN_ERRORS),
        },
        section="Imports",
    )


@routes.get("/imports/{id}/events")
async def import_events(request: web.Request) -> web.StreamResponse:
    """The import's figures as they change, until it is done or failed."""
    store = tenant_store(request)
    doc = await _upload(request)

    async def figures() -> tuple[dict[str, Any], bool]:
        now = await upload_summary(store, doc.id)
        assert now is not None
        rows = msgspec.structs.asdict(now.rows)
        return {"figures": rows, "status": now.status}, now.status not in ACTIVE

    return await follow(request, figures)


routes.get("/imports/{id}/errors.csv")(rejected_rows_csv)
