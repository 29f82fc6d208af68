"""``/api/v1/webhooks``: the signed-in tenant's webhooks, their delivery logs, and a
test delivery on demand."""

from __future__ import annotations

from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.http.bodies import json_body
from crmd.http.describe import Link, described
from crmd.http.keys import WEBHOOKS
from crmd.http.pages import DEFAULT_LIMIT, MAX_LIMIT, whole_number
from crmd.http.responses import json_response
from crmd.webhooks.schema import (
    CreatedWebhook,
    CreateWebhook,
    DeliveryList,
    DeliveryQuery,
    TestResult,
    UpdateWebhook,
    Webhook,
    WebhookList,
    WebhookPath,
)

routes = web.RouteTableDef()
WEBHOOK_LINKS = {
    name: Link(operation, {"id": "$response.body#/id"})
    for name, operation in (
        ("get", "get_webhook"),
        ("update", "update_webhook"),
        ("delete", "delete_webhook"),
        ("test", "test_webhook"),
        ("deliveries", "list_deliveries"),
    )
}


@routes.post("/api/v1/webhooks")
@described(
    "Subscribe a URL to crmd's events",
    tag="webhooks",
    body=CreateWebhook,
    ok={201: CreatedWebhook},
    errors=(409,),
    links=WEBHOOK_LINKS,
)
async def create_webhook(request: web.Request) -> web.Response:
    """The answer carries the webhook's signing ``secret``, this once only. A
    workspace has at most ``[webhooks] max_per_tenant`` webhooks (409 beyond)."""
    body = await json_body(request, CreateWebhook)
    made = await request.app[WEBHOOKS].create(tenant_store(request), body)
    return json_response(made, status=201)


@routes.get("/api/v1/webhooks")
@described("List the webhooks", tag="webhooks", ok=WebhookList)
async def list_webhooks(request: web.Request) -> web.Response:
    """Oldest first; secrets are never listed."""
    items = await request.app[WEBHOOKS].list(tenant_store(request))
    return json_response(WebhookList(items, len(items)))


@routes.get("/api/v1/webhooks/{id}")
@described("Read a webhook", tag="webhooks", path=WebhookPath, ok=Webhook)
async def get_webhook(request: web.Request) -> web.Response:
    found = await request.app[WEBHOOKS].get(tenant_store(request), request.match_info["id"])
    return json_response(found)


@routes.patch("/api/v1/webhooks/{id}")
@described(
    "Change a webhook's URL, events, description, or turn it off and on",
    tag="webhooks",
    path=WebhookPath,
    body=UpdateWebhook,
    ok=Webhook,
)
async def update_webhook(request: web.Request) -> web.Response:
    """Turned off, it receives nothing, and the deliveries waiting for it are
    cancelled."""
    body = await json_body(request, UpdateWebhook)
    changed = await request.app[WEBHOOKS].update(
        tenant_store(request), request.match_info["id"], body
    )
    return json_response(changed)


@routes.delete("/api/v1/webhooks/{id}")
@described(
    "Delete a webhook and its delivery log", tag="webhooks", path=WebhookPath, ok={204: None}
)
async def delete_webhook(request: web.Request) -> web.Response:
    await request.app[WEBHOOKS].delete(tenant_store(request), request.match_info["id"])
    return web.Response(status=204)


@routes.post("/api/v1/webhooks/{id}/test")
@described(
    "Post a webhook.test event to the webhook now",
    tag="webhooks",
    path=WebhookPath,
    ok=TestResult,
)
async def test_webhook(request: web.Request) -> web.Response:
    """Answers once the endpoint has answered (or timed out): its status and the first
    KB of its body. A test is not tried again."""
    result = await request.app[WEBHOOKS].test(tenant_store(request), request.match_info["id"])
    return json_response(result)


@routes.get("/api/v1/webhooks/{id}/deliveries")
@described(
    "A webhook's deliveries, newest first",
    tag="webhooks",
    path=WebhookPath,
    query=DeliveryQuery,
    ok=DeliveryList,
)
async def list_deliveries(request: web.Request) -> web.Response:
    """Follow ``cursor`` until it is null for older ones."""
    limit = whole_number(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = request.query.get("cursor") or None
    found = await request.app[WEBHOOKS].deliveries(
        tenant_store(request), request.match_info["id"], limit, cursor
    )
    return json_response(found)
