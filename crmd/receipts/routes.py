"""``POST /api/v1/deliveryReceipt[/{vendor}]``: verified by the vendor, queued, 202."""

from __future__ import annotations

import structlog
from aiohttp import web

from crmd.auth.middleware import public
from crmd.errors import NotFound, Unauthorized, Unprocessable
from crmd.http.keys import RUNTIME
from crmd.http.responses import json_response
from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts import batch
from crmd.receipts.status import RANK

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()
MAX_EVENTS = 10_000
MAX_EVENT_ID = 200


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
    except Exception as exc:  # a vendor's bug: the sender hears it, the log names it
        log.warning("receipt.parse_failed", vendor=vendor.name, error=repr(exc)[:300])
        raise Unprocessable(f"the {vendor.name} vendor could not read this receipt",
                            code="invalid_receipt") from None  # fmt: skip
    if len(events) > MAX_EVENTS:
        raise Unprocessable(f"at most {MAX_EVENTS} receipts per callback", code="too_many")
    for index, event in enumerate(events):
        if not event.event_id.strip() or len(event.event_id) > MAX_EVENT_ID:
            raise Unprocessable(
                f"receipt {index} has no usable eventId: every receipt needs one of 1 to "
                f"{MAX_EVENT_ID} characters, unique at the vendor",
                code="invalid_receipt",
                details={"index": index, "field": "eventId"},
            )
    # The same event twice in one callback is one event: the first is kept.
    first: dict[str, ReceiptEvent] = {}
    for event in events:
        first.setdefault(event.event_id, event)
    unique = list(first.values())
    wrong = [e.status for e in events if e.status not in RANK or e.status == "PENDING"]
    if wrong:
        raise Unprocessable(f"unknown receipt status {wrong[0]!r}; statuses are "
                            f"{', '.join(s for s in RANK if s != 'PENDING')}",
                            code="invalid_receipt")  # fmt: skip
    await runtime.redis.xadd(
        runtime.streams.receipts,
        {batch.FIELD: batch.encode(batch.ReceiptBatch(vendor.name, unique))},
    )
    runtime.metrics.receipts.labels(vendor.name, "accepted").inc(len(unique))
    duplicates = len(events) - len(unique)
    return json_response({"accepted": len(unique), "duplicates": duplicates}, status=202)


@routes.post("/api/v1/deliveryReceipt/{vendor}")
@public
async def vendor_receipt(request: web.Request) -> web.Response:
    return await receive(request, request.match_info["vendor"])


@routes.post("/api/v1/deliveryReceipt")
@routes.post("/api/receipt")  # the original project's path
@public
async def default_receipt(request: web.Request) -> web.Response:
    return await receive(request, None)
