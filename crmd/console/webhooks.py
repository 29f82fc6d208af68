"""Webhooks: the workspace's subscriptions listed and made (the secret shown once, on
the page the creation leads to), and each one's page with its delivery log, a "Send
test" button that shows what the endpoint answered, and switches to turn it off or
delete it. Every form posts and redirects (Post/Redirect/Get): the secret and a test's
answer ride in a short-lived stash, never in the address."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_id, tenant_store
from crmd.console import stash
from crmd.console.campaigns import stash_redis
from crmd.console.web import form, query_text, render, see_other
from crmd.errors import CrmdError
from crmd.http.keys import WEBHOOKS
from crmd.webhooks.kinds import SUBSCRIBABLE
from crmd.webhooks.schema import CreateWebhook, UpdateWebhook
from crmd.workspaces.guard import audited

routes = web.RouteTableDef()
HOME = "/webhooks"
PAGE = 25
KIND_WORDS = {
    "message.outcome": "a message was delivered, opened, clicked, bounced, complained of or failed",
    "customer.unsubscribed": "someone unsubscribed",
    "import.done": "an upload finished",
    "flow.entered": "a customer entered a flow",
    "flow.exited": "a customer left a flow",
    "flow.converted": "a customer reached a flow's goal",
}


@routes.get("/webhooks")
async def webhooks(request: web.Request) -> web.Response:
    items = await request.app[WEBHOOKS].list(tenant_store(request))
    limit = request.app[WEBHOOKS].settings.max_per_tenant
    return render(
        request,
        "webhooks.html",
        {"items": items, "kinds": KIND_WORDS, "limit": limit},
        section="Webhooks",
    )


@routes.post("/webhooks")
async def create(request: web.Request) -> web.Response:
    fields = await form(request)
    events = [k for k in SUBSCRIBABLE if fields.get(f"event-{k}")]
    if not events:
        return see_other(HOME, "Choose at least one event to send.", problem=True)
    typed = {k: fields.get(k, "") for k in ("url", "description")}
    try:
        body = msgspec.convert({**typed, "events": events}, CreateWebhook)
        made = await request.app[WEBHOOKS].create(tenant_store(request), body)
    except msgspec.ValidationError as exc:  # too long: the field's limit, said
        return see_other(HOME, str(exc), problem=True)
    except CrmdError as exc:
        return see_other(HOME, exc.message, problem=True)
    audited(request, str(made.id))
    token = await stash.keep(stash_redis(request), tenant_id(request), {"secret": made.secret})
    return see_other(f"{HOME}/{made.id}?created={token}", "The webhook is made.")


@routes.get("/webhooks/{id}")
async def webhook(request: web.Request) -> web.Response:
    service, store = request.app[WEBHOOKS], tenant_store(request)
    hook = await service.get(store, request.match_info["id"])
    user, redis = tenant_id(request), stash_redis(request)
    secret = test = None
    if token := query_text(request, "created", 40):
        secret = ((await stash.take(redis, user, token)) or {}).get("secret")
    if token := query_text(request, "test", 40):
        test = await stash.kept(redis, user, token)
    cursor = query_text(request, "cursor", 80) or None
    log = await service.deliveries(store, hook.id, PAGE, cursor)
    return render(
        request,
        "webhook.html",
        {
            "hook": hook,
            "secret": secret,
            "test": test,
            "log": log.items,
            "next": log.cursor,
            "paged": cursor is not None,
            "kinds": KIND_WORDS,
            "title": f"Webhook to {hook.url}",
        },
        section="Webhooks",
    )


@routes.post("/webhooks/{id}/test")
async def send_test(request: web.Request) -> web.Response:
    hook_id = request.match_info["id"]
    result = await request.app[WEBHOOKS].test(tenant_store(request), hook_id)
    sent = result.delivery
    answer: dict[str, Any] = {
        "delivered": result.delivered,
        "status": sent.responseStatus,
        "body": sent.responseBody,
        "latencyMs": sent.latencyMs,
        "error": sent.error,
    }
    token = await stash.keep(stash_redis(request), tenant_id(request), answer)
    return see_other(f"{HOME}/{hook_id}?test={token}")


@routes.post("/webhooks/{id}/enabled")
async def switch(request: web.Request) -> web.Response:
    hook_id = request.match_info["id"]
    on = (await form(request)).get("enabled") == "true"
    await request.app[WEBHOOKS].update(tenant_store(request), hook_id, UpdateWebhook(enabled=on))
    audited(request, hook_id)
    said = "The webhook is on again." if on else "The webhook is off: nothing is sent to it."
    return see_other(f"{HOME}/{hook_id}", said)


@routes.post("/webhooks/{id}/delete")
async def delete(request: web.Request) -> web.Response:
    await request.app[WEBHOOKS].delete(tenant_store(request), request.match_info["id"])
    audited(request, request.match_info["id"])
    return see_other(HOME, "The webhook and its delivery log are deleted.")
