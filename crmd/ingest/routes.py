"""Upload, upload jobs, and the customers and orders they produced."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.http.describe import Link, Media, described
from crmd.http.keys import IMPORTS
from crmd.http.pages import PageQuery, newest_page, read_page
from crmd.http.responses import json_response
from crmd.ingest import upload as upload_service
from crmd.ingest.headers import MAX_MAPPING
from crmd.ingest.listing import CustomersQuery, RecordsQuery, list_records
from crmd.ingest.rejected import rejected_rows_csv
from crmd.ingest.schema import RecordList, Upload, UploadAccepted, UploadList
from crmd.store import documents

routes = web.RouteTableDef()
KINDS = "{kind:customers|orders}"
HIDDEN = {"userId": 0, "_v": 0}


class KindPath(msgspec.Struct):
    kind: Literal["customers", "orders"]


class UploadQuery(msgspec.Struct):
    mapping: Annotated[str, msgspec.Meta(max_length=MAX_MAPPING)] | None = None
    """Your column for each of crmd's fields, as JSON (``{"email": "E-mail"}``)."""
    filename: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    """The file's name, for a raw CSV body."""


class UploadHeaders(msgspec.Struct):
    idempotency_key: Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9._:-]{1,200}$")] | None = (
        msgspec.field(default=None, name="Idempotency-Key")
    )
    """A retry with the same key gets the first request's upload."""


CSV_EXAMPLE = "name,email,spend,visits\nAda,ada@example.com,1200,4\nBob,bob@example.com,40,1\n"
CSV_FILE = {"type": "string", "contentMediaType": "text/csv", "examples": [CSV_EXAMPLE]}
UPLOAD_BODIES = (
    Media(
        "multipart/form-data",
        {
            "type": "object",
            "properties": {"mapping": {"type": "string"}, "file": CSV_FILE},
            "required": ["file"],
        },
        "a 'file' part (and an optional 'mapping' before it)",
    ),
    Media("text/csv", {"type": "string", "examples": [CSV_EXAMPLE]}, "the CSV itself"),
)


@routes.post(f"/api/v1/upload/{KINDS}")
@described(
    "Upload a CSV of customers or orders",
    tag="uploads",
    path=KindPath,
    query=UploadQuery,
    headers=UploadHeaders,
    body=UPLOAD_BODIES,
    ok={202: UploadAccepted},
    errors=(409, 415),  # 409: the same Idempotency-Key's upload is still arriving
    links={
        "get": Link("get_upload", {"id": "$response.body#/uploadId"}),
        "errors": Link("upload_errors_csv", {"id": "$response.body#/uploadId"}),
    },
)
async def upload(request: web.Request) -> web.Response:
    """The file is checked as it arrives: every bad row is reported with its line and
    column (the file is refused whole only when it cannot be read as CSV at all). The
    valid rows are imported in the background: follow ``GET /uploads/{id}``."""
    imports = request.app[IMPORTS]
    status, answer = await imports.receive(
        request, request.match_info["kind"], tenant_store(request)
    )
    return json_response(msgspec.convert(answer, UploadAccepted), status=status)


def upload_view(doc: documents.Upload) -> dict[str, Any]:
    view = {
        "id": str(doc.id),
        "uploadId": str(doc.id),
        "kind": doc.kind,
        "fileName": doc.fileName,
        "status": doc.status,
        "rows": doc.rows,
        "errors": doc.errors,
        "createdAt": doc.createdAt,
        "finishedAt": doc.finishedAt,
        "timings": doc.timings,
    }
    if doc.reason:
        view["reason"] = doc.reason
    return view


@routes.get("/api/v1/uploads")
@described(
    "List uploads, newest first",
    tag="uploads",
    ok=UploadList,
    query=PageQuery,
)
async def list_uploads(request: web.Request) -> web.Response:
    page = read_page(request, keyset=False)
    store = tenant_store(request)
    docs, _, total = await newest_page(store, "uploads", page, None, projection=HIDDEN)
    items = [
        msgspec.convert(upload_view(doc), Upload, from_attributes=True)
        for doc in documents.decode_all(docs, documents.Upload)
    ]
    return json_response(UploadList(items, total))


async def _upload(request: web.Request) -> documents.Upload:
    return await upload_service.get_upload(tenant_store(request), request.match_info["id"])


@routes.get("/api/v1/uploads/{id}")
@described("An upload: its status, counts and first errors", tag="uploads", ok=Upload)
async def get_upload(request: web.Request) -> web.Response:
    view = upload_view(await _upload(request))
    return json_response(msgspec.convert(view, Upload, from_attributes=True))


@routes.get("/api/v1/uploads/{id}/errors.csv")
@described(
    "Every rejected row of an upload, as CSV",
    tag="uploads",
    ok=Media("text/csv", {"type": "string"}, "line, column, code, message, row"),
)
async def upload_errors_csv(request: web.Request) -> web.StreamResponse:
    """Every rejected row: its line, column, code and message, then the row as it was."""
    return await rejected_rows_csv(request)


@routes.get("/api/v1/customers")
@described("List customers, newest first", tag="uploads", ok=RecordList, query=CustomersQuery)
async def list_customers(request: web.Request) -> web.Response:
    return await list_records(request, "customers")


@routes.get("/api/v1/orders")
@described("List orders, newest first", tag="uploads", ok=RecordList, query=RecordsQuery)
async def list_orders(request: web.Request) -> web.Response:
    return await list_records(request, "orders")
