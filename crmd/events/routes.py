"""``/api/v1/events``: what customers did, posted one at a time or in batches."""

from __future__ import annotations

from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.events.checks import PostedEvent
from crmd.events.intake import Accepted
from crmd.http.bodies import read_json
from crmd.http.describe import described
from crmd.http.keys import EVENTS
from crmd.http.responses import json_response

routes = web.RouteTableDef()


@routes.post("/api/v1/events")
@described(
    "Record what customers did: one event, or an array of them",
    tag="events",
    body=(PostedEvent, list[PostedEvent]),
    ok={202: Accepted},
)
async def post_events(request: web.Request) -> web.Response:
    """Each event names its customer by external id, e-mail or crmd id (looked up in
    that order). The batch is checked whole: any problem answers 422 with every
    problem's ``index`` and ``field`` in ``details``, and nothing of the batch is stored.
    Otherwise 202: the events are queued and stored shortly by the events actor, each
    item ``accepted``, or ``duplicate`` when its ``id`` was posted before (an event is
    stored once per id). A customer not found is refused or made, as
    ``[events] unknown_customer`` says."""
    accepted = await request.app[EVENTS].post(tenant_store(request), await read_json(request))
    return json_response(accepted, status=202)
