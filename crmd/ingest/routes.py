"""Upload, upload jobs, and the customers and orders they produced."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web
from pymongo import DESCENDING

from crmd.auth.requests import tenant_store
from crmd.http.keys import IMPORTS
from crmd.http.pages import read_page
from crmd.http.responses import json_response
from crmd.http.spreadsheet import csv_line
from crmd.ingest.listing import list_records

routes = web.RouteTableDef()
KINDS = "{kind:customers|orders}"
NEWEST = [("createdAt", DESCENDING), ("_id", DESCENDING)]
HIDDEN = {"userId": 0, "_v": 0}


@routes.post(f"/api/v1/upload/{KINDS}")
async def upload(request: web.Request) -> web.Response:
    imports = request.app[IMPORTS]
    status, answer = await imports.receive(
        request, request.match_info["kind"], tenant_store(request)
    )
    return json_response(answer, status=status)


def upload_view(doc: dict[str, Any]) -> dict[str, Any]:
    view = {
        "id": str(doc["_id"]),
        "uploadId": str(doc["_id"]),
        "kind": doc["kind"],
        "fileName": doc["fileName"],
        "status": doc["status"],
        "rows": doc["rows"],
        "errors": doc.get("errors", []),
        "createdAt": doc["createdAt"],
        "finishedAt": doc.get("finishedAt"),
        "timings": doc.get("timings", {}),
    }
    if doc.get("reason"):
        view["reason"] = doc["reason"]
    return view


@routes.get("/api/v1/uploads")
async def list_uploads(request: web.Request) -> web.Response:
    page = read_page(request)
    uploads = tenant_store(request)["uploads"]
    cursor = uploads.find({}, projection=HIDDEN, sort=NEWEST, skip=page.offset, limit=page.limit)
    items = [upload_view(doc) async for doc in cursor]
    return json_response({"items": items, "total": await uploads.count_documents()})


async def _upload(request: web.Request) -> dict[str, Any]:
    uploads = tenant_store(request)["uploads"]
    return await uploads.get(request.match_info["id"], "upload", projection=HIDDEN)


@routes.get("/api/v1/uploads/{id}")
async def get_upload(request: web.Request) -> web.Response:
    return json_response(upload_view(await _upload(request)))


@routes.get("/api/v1/uploads/{id}/errors.csv")
async def upload_errors_csv(request: web.Request) -> web.StreamResponse:
    """Every rejected row: its line, column, code and message, then the row as it was."""
    doc = await _upload(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="upload-{doc["_id"]}-errors.csv"',
        }
    )
    await response.prepare(request)
    lines = [csv_line(["line", "column", "code", "message", "row"])]
    size = 0
    rows = tenant_store(request)["upload_errors"].find(
        {"uploadId": doc["_id"]}, sort=[("line", 1)], batch_size=1000
    )
    async for error in rows:
        # The row as it was in the file, one cell here; made safe as a whole, since
        # it is the cell a spreadsheet would evaluate.
        raw = io.StringIO()
        csv.writer(raw, lineterminator="").writerow(error.get("values", []))
        line = [error["line"], error["column"], error["code"], error["message"], raw.getvalue()]
        lines.append(csv_line(line))
        size += len(lines[-1])
        if size > 64 * 1024:
            await response.write("".join(lines).encode())
            lines, size = [], 0
    await response.write("".join(lines).encode())
    await response.write_eof()
    return response


@routes.get("/api/v1/customers")
async def list_customers(request: web.Request) -> web.Response:
    return await list_records(request, "customers")


@routes.get("/api/v1/orders")
async def list_orders(request: web.Request) -> web.Response:
    return await list_records(request, "orders")
