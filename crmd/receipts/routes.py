"""``POST /api/v1/deliveryReceipt[/{vendor}]``: verified by the vendor, queued, 202."""

from __future__ import annotations

from aiohttp import web

from crmd.auth.requests import public
from crmd.http.keys import RECEIPTS
from crmd.http.responses import json_response

routes = web.RouteTableDef()


async def receive(request: web.Request, vendor: str | None) -> web.Response:
    body = await request.read()  # over the size cap: 413 before anything else
    accepted, duplicates = await request.app[RECEIPTS].receive(vendor, request.headers, body)
    return json_response({"accepted": accepted, "duplicates": duplicates}, status=202)


@routes.post("/api/v1/deliveryReceipt/{vendor}")
@public
async def vendor_receipt(request: web.Request) -> web.Response:
    return await receive(request, request.match_info["vendor"])


@routes.post("/api/v1/deliveryReceipt")
@public
async def default_receipt(request: web.Request) -> web.Response:
    return await receive(request, None)
