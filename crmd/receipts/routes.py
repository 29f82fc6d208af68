"""``POST /api/v1/deliveryReceipt[/{vendor}]``: verified by the vendor, queued, 202."""

from __future__ import annotations

import structlog
from aiohttp import web

from crmd.auth.middleware import public
from crmd.errors import NotFound, Unauthorized, Unprocessable
from crmd.http.keys import RUNTIME
from crmd.http.responses import json_response
from crmd.receipts import batch
from crmd.receipts.status import RANK

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
MAX_EVENTS = 10_000


async def receive(request: web.Request, vendor_name: str | None) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        vendor = runtime.vendors.get(vendor_name)
    except Unprocessable:
        raise NotFound(f"no vendor {vendor_name!r}") from None
    body = await request.read()  # over the size cap: 413 before anything else
    try:
        vendor.verify_receipt(request.headers, body)
    except Exception as exc:  # a vendor bug must fail closed, never open
        runtime.metrics.receipts.labels(vendor.name, "rejected").inc()
        log.warning("receipt.rejected", vendor=vendor.name, reason=str(exc)[:200])
        raise Unauthorized(f"receipt not accepted: {exc}"[:300]) from None
    try:
        events = list(vendor.parse_receipts(request.headers, body))
    except ValueError as exc:
        raise Unprocessable(str(exc)[:500], code="invalid_receipt") from None
    if len(events) > MAX_EVENTS:
        raise Unprocessable(f"at most {MAX_EVENTS} receipts per callback", code="too_many")
    wrong = [e.status for e in events if e.status not in RANK or e.status == "PENDING"]
    if wrong:
        raise Unprocessable(f"unknown receipt status {wrong[0]!r}; statuses are "
                            f"{', '.join(s for s in RANK if s != 'PENDING')}",
                            code="invalid_receipt")  # fmt: skip
    await runtime.redis.xadd(
        runtime.streams.receipts,
        {batch.FIELD: batch.encode(batch.ReceiptBatch(vendor.name, events))},
    )
    runtime.metrics.receipts.labels(vendor.name, "accepted").inc(len(events))
    return json_response({"accepted": len(events)}, status=202)


@routes.post("/api/v1/deliveryReceipt/{vendor}")
@public
async def vendor_receipt(request: web.Request) -> web.Response:
    return await receive(request, request.match_info["vendor"])


@routes.post("/api/v1/deliveryReceipt")
@routes.post("/api/receipt")  # the original project's path
@public
async def default_receipt(request: web.Request) -> web.Response:
    return await receive(request, None)
