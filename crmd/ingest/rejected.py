"""Every rejected row of an upload, as a CSV file streamed a batch at a time."""

from __future__ import annotations

import csv
import io

from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.http.spreadsheet import csv_line

HIDDEN = {"userId": 0, "_v": 0}


async def rejected_rows_csv(request: web.Request) -> web.StreamResponse:
    """Every rejected row of the upload ``{id}``: its line, column, code and message, then
    the row as it was. For the API and the console alike."""
    store = tenant_store(request)
    doc = await store["uploads"].get(request.match_info["id"], "upload", projection=HIDDEN)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="upload-{doc["_id"]}-errors.csv"',
        }
    )
    await response.prepare(request)
    lines = [csv_line(["line", "column", "code", "message", "row"])]
    size = 0
    rows = store["upload_errors"].find(
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
