"""The suppression list: the addresses no campaign is sent to, newest first, one found
by its address, one added (many at once through the API's CSV import) or taken off."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.console.paging import numbered
from crmd.console.web import form, query_text, render, see_other
from crmd.suppressions import entries
from crmd.suppressions.entries import MAX_REASON, Entry
from crmd.workspaces.guard import audited

routes = web.RouteTableDef()
PAGE = 50
MAX_TYPED = 320
HOME = "/suppressions"


@routes.get("/suppressions")
async def suppressions(request: web.Request) -> web.Response:
    store = tenant_store(request)
    wanted = query_text(request, "email", MAX_TYPED).strip()
    total = int((await store.tally())[entries.COLLECTION])
    page: dict[str, Any]
    if wanted:
        email = entries.address(wanted)
        found = await entries.find(store, email) if email else None
        items = [found] if found else []
        said = f"{wanted} is {'' if found else 'not '}on the list"
        page = {"said": said, "pages": 1, "links": [], "number": 1, "base": "", "join": "?"}
    else:
        numbered_page = numbered(request, total, PAGE)
        top = await store.highest(entries.COLLECTION)
        start = await numbered_page.start(store[entries.COLLECTION], top)
        window = await entries.newest_entries(store, start, PAGE)
        items = window.items
        page = numbered_page.context(len(items), "addresses", "/suppressions")
    return render(
        request,
        "suppressions.html",
        {"items": items, "page": page, "wanted": wanted, "total": total},
        section="Suppressions",
    )


@routes.post("/suppressions")
async def add(request: web.Request) -> web.Response:
    fields = await form(request)
    email = entries.address(fields.get("email", "")[:MAX_TYPED])
    reason = fields.get("reason", "").strip()
    if email is None:
        return see_other(HOME, "Give an email address to suppress.", problem=True)
    if len(reason) > MAX_REASON:
        return see_other(HOME, f"Keep the reason under {MAX_REASON} characters.", problem=True)
    added, _ = await entries.suppress(tenant_store(request), [Entry(email, reason, "operator")])
    if added:
        audited(request, email)
    return see_other(HOME, f"{email} is suppressed." if added else f"{email} was already.")


@routes.post("/suppressions/remove")
async def remove(request: web.Request) -> web.Response:
    fields = await form(request)
    email = entries.address(fields.get("email", "")[:MAX_TYPED])
    if email is None or not await entries.remove(tenant_store(request), email):
        return see_other(HOME, "That address is not on the list.", problem=True)
    audited(request, email)
    return see_other(HOME, f"{email} may be sent campaigns again.")
