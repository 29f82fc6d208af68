"""The pages a signed unsubscribe link opens, for anyone who holds the link (no sign-in):
``GET /u/{token}`` asks to confirm with a button, and ``POST /u/{token}`` unsubscribes
at once. That POST is also RFC 8058's one-click unsubscribe, which a mail provider
sends (``List-Unsubscribe=One-Click``) with no cookie and no CSRF token: the signature
in the address is the authority, checked by ``crmd.suppressions.links``. A bad link is
answered with the console's error page (400 damaged, 403 forged, 404 nobody on file)."""

from __future__ import annotations

from aiohttp import web

from crmd.console.web import render, signed_link
from crmd.http.keys import UNSUBSCRIBES

routes = web.RouteTableDef()
PRIVATE = {"Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
"""The address is a key: it is not sent on to other sites, nor indexed."""


def masked(email: str) -> str:
    """Enough of the address to recognise it, not to read it off a shared screen."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


def _page(request: web.Request, email: str, done: bool, just_now: bool) -> web.Response:
    response = render(
        request,
        "unsubscribe.html",
        {
            "title": "Unsubscribed" if done else "Unsubscribe",
            "address": masked(email),
            "done": done,
            "just_now": just_now,
            "token": request.match_info["token"],
        },
    )
    response.headers.update(PRIVATE)
    return response


@routes.get("/u/{token}")
@signed_link
async def confirm(request: web.Request) -> web.Response:
    """Opening the link changes nothing: mail systems open links to check them."""
    found = await request.app[UNSUBSCRIBES].recipient(request.match_info["token"])
    return _page(request, found.email, found.already, just_now=False)


@routes.post("/u/{token}")
@signed_link
async def unsubscribe(request: web.Request) -> web.Response:
    email = await request.app[UNSUBSCRIBES].unsubscribe(request.match_info["token"])
    return _page(request, email, True, just_now=True)
