"""``POST /api/v1/deliveryReceipt[/{vendor}]``: verified by the vendor's plugin (or by a
receipt source's, such as a mail provider's event webhook), queued, 202."""

from __future__ import annotations

import msgspec
from aiohttp import web

from crmd.auth.requests import public
from crmd.http.describe import Media, described
from crmd.http.keys import RECEIPTS
from crmd.http.responses import json_response

routes = web.RouteTableDef()


class ReceiptsTaken(msgspec.Struct):
    accepted: int
    """Receipt events queued to be applied."""
    duplicates: int
    """Events seen before (by their event id), ignored."""


RECEIPT_BODY = Media(
    "application/json",
    {"description": "The vendor's (or the provider's) own receipt format, read by its plugin."},
)
RECEIPT_ERRORS = (401, 400, 404, 422)


async def receive(request: web.Request, vendor: str | None) -> web.Response:
    body = await request.read()  # over the size cap: 413 before anything else
    accepted, duplicates = await request.app[RECEIPTS].receive(vendor, request.headers, body)
    return json_response(ReceiptsTaken(accepted, duplicates), status=202)


@routes.post("/api/v1/deliveryReceipt/{vendor}")
@public
@described(
    "A vendor's or a receipt source's (a mail provider's webhook) receipts, verified by its plugin",
    tag="receipts",
    body=RECEIPT_BODY,
    ok={202: ReceiptsTaken},
    auth="receipt",
    errors=RECEIPT_ERRORS,
)
async def vendor_receipt(request: web.Request) -> web.Response:
    return await receive(request, request.match_info["vendor"])


@routes.post("/api/v1/deliveryReceipt")
@public
@described(
    "Delivery receipts for the default vendor",
    tag="receipts",
    body=RECEIPT_BODY,
    ok={202: ReceiptsTaken},
    auth="receipt",
    errors=RECEIPT_ERRORS,
)
async def default_receipt(request: web.Request) -> web.Response:
    return await receive(request, None)
