"""``POST /api/v1/deliveryReceipt[/{vendor}]``: verified by the vendor's plugin (or by a
receipt source's, such as a mail provider's event webhook), queued, 202; and a message's
click and open links, ``GET /c/<token>`` and ``GET /o/<token>``."""

from __future__ import annotations

import msgspec
from aiohttp import web

from crmd.auth.requests import public
from crmd.http.describe import Media, described
from crmd.http.keys import RECEIPTS, TRACKER
from crmd.http.responses import json_response
from crmd.receipts.hits import LinksUnavailable

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


NOT_A_LINK = (
    "<!doctype html><meta charset=utf-8><title>Link not found</title>"
    "<p>This link is not one of ours, is incomplete, or has expired.</p>"
)
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c000000000100010000020144003b"
)
"""A transparent 1x1 GIF."""
TRY_AGAIN = (
    "<!doctype html><meta charset=utf-8><title>Try again</title>"
    "<p>This link cannot be followed right now. Please try again in a minute.</p>"
)
NOT_A_LINK_PAGE = Media(
    "text/html",
    {"description": "A plain page: the link is cut short, changed, not this server's, or expired."},
)
PRIVATE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def not_a_link() -> web.Response:
    """A plain page: whoever follows a broken link is a person, not a REST client."""
    return web.Response(status=404, text=NOT_A_LINK, content_type="text/html", headers=PRIVATE)


@routes.get("/c/{token}")
@public
@described(
    "A message's click link: counts the click, then redirects to the campaign's link",
    tag="tracking",
    ok={302: None, 404: NOT_A_LINK_PAGE, 503: Media("text/html", {"description": TRY_AGAIN})},
    auth="public",
)
async def click(request: web.Request) -> web.StreamResponse:
    agent = request.headers.get("User-Agent", "")
    try:
        target = await request.app[TRACKER].click(request.match_info["token"], agent)
    except LinksUnavailable:
        return web.Response(
            status=503,
            text=TRY_AGAIN,
            content_type="text/html",
            headers={**PRIVATE, "Retry-After": "30"},
        )
    if target is None:
        return not_a_link()
    return web.Response(status=302, headers={**PRIVATE, "Location": target})


@routes.get("/o/{token}")
@public
@described(
    "A message's open image (1x1 GIF): counts the open",
    tag="tracking",
    ok={200: Media("image/gif", {"description": "A transparent 1x1 image."}), 404: NOT_A_LINK_PAGE},
    auth="public",
)
async def opened(request: web.Request) -> web.StreamResponse:
    agent = request.headers.get("User-Agent", "")
    if not await request.app[TRACKER].open(request.match_info["token"], agent):
        return not_a_link()
    return web.Response(body=PIXEL, content_type="image/gif", headers=PRIVATE)
