"""``/api/v1/keys``: the workspace's API keys, made, listed and revoked. Only a person
with ``manage`` reaches these routes (``crmd.workspaces.roles``): a key never holds
``manage``, so no key makes or revokes keys."""

from __future__ import annotations

from aiohttp import web

from crmd.http.bodies import json_body
from crmd.http.describe import Link, described
from crmd.http.keys import API_KEYS
from crmd.http.responses import json_response, secret_json
from crmd.workspaces.requests import caller, tenant_store
from crmd.workspaces.schema import CreatedKey, CreateKey, KeyList, KeyMaker, KeyPath

routes = web.RouteTableDef()


def maker(request: web.Request) -> KeyMaker:
    who = caller(request)
    return KeyMaker("api", who.user, who.email)


@routes.post("/api/v1/keys")
@described(
    "Make an API key",
    tag="keys",
    body=CreateKey,
    ok={201: CreatedKey},
    errors=(409,),
    links={"revoke": Link("revoke_key", {"id": "$response.body#/id"})},
)
async def create_key(request: web.Request) -> web.Response:
    """The answer carries the key, ``key``, this once only: crmd keeps its SHA-256
    alone. Send it as ``Authorization: Bearer <key>``; it works in this workspace
    only, with its scopes (``X-Crmd-Workspace`` naming another workspace is refused,
    403 ``key_workspace``). A workspace holds at most ``[keys] max_per_workspace``
    live keys (409 ``too_many_keys`` beyond)."""
    body = await json_body(request, CreateKey)
    made = await request.app[API_KEYS].create(tenant_store(request), body, maker(request))
    return secret_json(made, status=201)


@routes.get("/api/v1/keys")
@described("List the API keys", tag="keys", ok=KeyList)
async def list_keys(request: web.Request) -> web.Response:
    """Newest first, with when and from where each was last used, revoked and expired
    ones too; never a key nor its hash."""
    items, total = await request.app[API_KEYS].list(tenant_store(request))
    return json_response(KeyList(items, total))


@routes.delete("/api/v1/keys/{id}")
@described("Revoke an API key", tag="keys", path=KeyPath, ok={204: None})
async def revoke_key(request: web.Request) -> web.Response:
    """From the next request on, in every crmd process, the key is refused (401). A key
    is revoked once: revoking it again answers 404, as for a key that does not exist."""
    await request.app[API_KEYS].revoke(
        tenant_store(request), request.match_info["id"], maker(request)
    )
    return web.Response(status=204)
