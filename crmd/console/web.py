"""What every console page shares: the session cookie, the CSRF check, the security
headers, the error page, and ``render``.

A session is an HttpOnly, SameSite=Lax cookie holding a crmd token (the API's own,
checked the same way on every request, allow-list included). Every form carries a
CSRF token derived from the session (or, before sign-in, from a random cookie of its
own) with a key only the server knows; a POST without it is refused. Scripts send it
as ``X-CSRF-Token``. No page embeds a script or a style: ``Content-Security-Policy``
allows only crmd's own files.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import aiohttp_jinja2
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from crmd.console.navigation import may_open
from crmd.console.origins import Origin, is_own, own_origins
from crmd.console.workspace import WORKSPACES, place
from crmd.errors import BadRequest, CrmdError, Forbidden
from crmd.http.forms import read_form
from crmd.http.keys import CALLER, SIGN_IN, USER

log = structlog.get_logger(__name__)

SESSION = "crmd_session"
PRE_SESSION = "crmd_pre"
FLASH = "crmd_flash"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
API_PATHS = ("/api/", "/healthz", "/readyz", "/metrics")
STATIC_PREFIX = "/static/"
NAV = (
    ("/", "Dashboard"),
    ("/customers", "Customers"),
    ("/orders", "Orders"),
    ("/imports", "Imports"),
    ("/segments", "Segments"),
    ("/campaigns", "Campaigns"),
    ("/flows", "Flows"),
    ("/suppressions", "Suppressions"),
    ("/webhooks", "Webhooks"),
    ("/members", "Members"),
    ("/keys", "API keys"),
    ("/audit", "Audit"),
    ("/plugins", "Plugins"),
    ("/system", "System"),
    ("/reference", "API"),
)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PRE = web.RequestKey("pre_session", str)
"""This request's pre-session value (from its cookie, or made now for the page's forms)."""
_LOCAL_PATH = re.compile(r"/[A-Za-z0-9/_.~%?=&+-]{0,500}")
"""A path of this console (no scheme, no host, no backslash, no control character)."""
CONSOLE_ROUTE = "__crmd_console_route__"
OPEN = "__crmd_console_open__"
SCRIPTED = "__crmd_console_scripted__"
SELF_CHECKED = "__crmd_console_self_checked__"
SIGNED = "__crmd_console_signed__"

Page = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ConsoleSettings:
    csrf_key: bytes
    secure_cookies: bool
    """Cookies only over HTTPS: when ``[server] public_url`` is https."""
    session_seconds: int
    public_url: str
    currency: str = "INR"
    """``[console] currency``: what amounts are shown in."""


CONSOLE = web.AppKey("console", ConsoleSettings)


def open_page(handler: Page) -> Page:
    """A page anyone may see: the sign-in pages."""
    setattr(handler, OPEN, True)
    return handler


def scripted(handler: Page) -> Page:
    """A route the console's script calls: it answers JSON, errors included."""
    setattr(handler, SCRIPTED, True)
    return handler


def signed_link(handler: Page) -> Page:
    """A page whose address is its own authority (a signed link sent in a message, which
    the handler checks): open to anyone, and its POST needs no session, CSRF token or
    origin. RFC 8058's one-click unsubscribe is a POST from the mail provider's server,
    with no cookie and no token."""
    setattr(handler, OPEN, True)
    setattr(handler, SIGNED, True)
    return handler


def checks_own_csrf(handler: Page) -> Page:
    """A POST whose body the handler streams (an upload): it checks the CSRF field
    itself, with ``check_csrf``, before it reads anything else."""
    setattr(handler, SELF_CHECKED, True)
    return handler


def console_route(handler: Page) -> None:
    """Mark a handler as one of the console's (``setup_console`` marks them all)."""
    setattr(handler, CONSOLE_ROUTE, True)


def is_console(request: web.Request) -> bool:
    """A console page, a static file, or an address nothing answers asked by a browser
    (the console's 404 page); not the API, nor a route a plugin or another part added."""
    if request.path.startswith(API_PATHS):
        return False
    if request.path.startswith(STATIC_PREFIX):
        return True
    match = request.match_info
    if match.http_exception is not None:  # nothing here: a page for a browser, else JSON
        return "text/html" in request.headers.get("Accept", "")
    return bool(getattr(match.handler, CONSOLE_ROUTE, False))


def csrf_token(request: web.Request) -> str:
    """The token this browser's forms carry: bound to its session (or pre-session)."""
    settings = request.app[CONSOLE]
    seed = request.cookies.get(SESSION) or request.get(PRE) or ""
    return hmac.new(settings.csrf_key, f"csrf:{seed}".encode(), hashlib.sha256).hexdigest()


def check_csrf(request: web.Request, given: str | None) -> None:
    if not given or not hmac.compare_digest(given, csrf_token(request)):
        raise Forbidden(
            "this form has expired or did not come from this console: reload the page and "
            "try again",
            code="bad_csrf",
        )


def _own_origins(request: web.Request) -> set[Origin]:
    """This console's origins for ``request``: the address it was sent to (scheme and
    Host) and ``[server] public_url``'s."""
    return own_origins(f"{request.scheme}://{request.host}", request.app[CONSOLE].public_url)


def _same_origin(request: web.Request) -> bool:
    """A browser names where a POST comes from; anything but this console (another
    scheme, host or port) is refused."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")
    return is_own(origin, _own_origins(request))


def unfinished(message: str, column: int | None = None) -> dict[str, Any]:
    """What a script's as-you-type request answers (200) when the input is not ready:
    a rule or message still being written is an answer, not a failed request."""
    return {"error": {"message": message, "column": column}}


def wants_json(request: web.Request) -> bool:
    handler = request.match_info.handler
    return bool(getattr(handler, SCRIPTED, False)) or request.headers.get("Accept", "").startswith(
        "application/json"
    )


def safe_next(target: str | None) -> str:
    """A path on this console to go to after sign-in; anything else is the dashboard."""
    if not target or not _LOCAL_PATH.fullmatch(target) or target.startswith("//"):
        return "/"
    return target


@web.middleware
async def console(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session, CSRF and errors for the console's pages; the API passes through."""
    if not is_console(request):
        return await handler(request)
    started = time.perf_counter()
    try:
        response = await _console_request(request, handler)
    except web.HTTPException as exc:
        if exc.status < 400 or wants_json(request):
            raise
        response = error_page(request, exc.status, _title(exc.status), exc.reason or "")
    except CrmdError as exc:
        if wants_json(request):
            raise
        response = error_page(request, exc.status, _title(exc.status), exc.message)
    if isinstance(response, web.Response) or not response.prepared:
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


async def _console_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    handler_fn = request.match_info.handler
    token = request.cookies.get(SESSION)
    if token:
        try:
            request[USER] = user = await request.app[SIGN_IN].user_for_token(token)
        except CrmdError:
            token = None  # expired, or the user is gone: as if signed out
        else:
            await place(request, user.id, user.email)
    if PRE_SESSION in request.cookies:
        request[PRE] = request.cookies[PRE_SESSION]
    is_open = (
        getattr(handler_fn, OPEN, False)
        or request.path.startswith(STATIC_PREFIX)
        or request.match_info.http_exception is not None  # nothing here: 404 to anyone
    )
    if USER not in request and not is_open:
        if request.method == "GET" and not wants_json(request):
            target = quote(request.path_qs, safe="/?=&")
            redirect = web.HTTPSeeOther(f"/sign-in?next={target}")
            if request.cookies.get(SESSION):
                redirect.del_cookie(SESSION, path="/")
            raise redirect
        raise web.HTTPUnauthorized(reason="Sign in first")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not getattr(handler_fn, SIGNED, False):
        if not _same_origin(request):
            raise Forbidden("this request did not come from this console", code="bad_origin")
        if not getattr(handler_fn, SELF_CHECKED, False):
            given = request.headers.get(CSRF_HEADER)
            if given is None and request.content_type == "application/x-www-form-urlencoded":
                given = (await read_form(request)).get(CSRF_FIELD)
            check_csrf(request, given)
    return await handler(request)


async def form(request: web.Request) -> dict[str, str]:
    """The posted form's fields (checked for CSRF already)."""
    fields = await read_form(request)
    return {k: v for k, v in fields.items() if k != CSRF_FIELD}


def _title(status: int) -> str:
    return {
        400: "That did not work",
        401: "Sign in first",
        403: "Not allowed",
        404: "Not found",
        409: "Not now",
        410: "No longer valid",
        413: "Too large",
        422: "That did not work",
        429: "Slow down",
        503: "Try again shortly",
    }.get(status, "Something went wrong")


def error_page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    """The error page; its "Go back" leads to the page the browser came from when that
    is this console's (never a ``javascript:`` or another site's address), else to the
    dashboard."""
    back = request.headers.get("Referer", "")
    if not is_own(back, _own_origins(request)):
        back = "/"
    return render(
        request,
        "error.html",
        {"title": title, "message": message, "back": back},
        status=status,
    )


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    section: str | None = None,
) -> web.Response:
    """The page, with what every page shows (the signed-in user, the navigation, the
    CSRF token) and the security headers."""
    if USER not in request and PRE_SESSION not in request.cookies:
        request[PRE] = request.get(PRE) or secrets.token_urlsafe(24)
    full = {
        "user": request.get(USER),
        "caller": request.get(CALLER),
        "workspaces": request.get(WORKSPACES, ()),
        "nav": may_open(NAV, request.get(CALLER)) if USER in request else (),
        "section": section,
        "csrf": csrf_token(request),
        "title": context.get("title") or section or "crmd",
        **_flash(request),
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    if FLASH in request.cookies:
        response.del_cookie(FLASH, path="/")
    if PRE in request and PRE_SESSION not in request.cookies:
        settings = request.app[CONSOLE]
        response.set_cookie(
            PRE_SESSION,
            request[PRE],
            httponly=True,
            samesite="Lax",
            secure=settings.secure_cookies,
            path="/",
        )
    return response


def see_other(location: str, notice: str | None = None, *, problem: bool = False) -> web.Response:
    """Redirect after a POST, with a line for the next page to say (as a problem when
    what was asked for was refused). The line rides in a short-lived cookie, not in the
    address: a link cannot make the console say what it did not."""
    response = web.Response(status=303, headers={"Location": location})
    if notice:
        said = ("!" if problem else ".") + notice[:200]
        response.set_cookie(FLASH, quote(said), max_age=60, httponly=True, samesite="Lax", path="/")
    return response


def _flash(request: web.Request) -> dict[str, str]:
    said = unquote(request.cookies.get(FLASH, ""))[:201]
    if not said:
        return {"notice": "", "problem": ""}
    return {
        "notice": said[1:] if said[0] != "!" else "",
        "problem": said[1:] if said[0] == "!" else "",
    }


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every console answer (pages, static files, errors) just before it goes out."""
    if is_console(request):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.content_type == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")


def sign_in_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    settings = request.app[CONSOLE]
    response.set_cookie(
        SESSION,
        token,
        max_age=settings.session_seconds,
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
        path="/",
    )
    response.del_cookie(PRE_SESSION, path="/")


def sign_out_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION, path="/")


def query_text(request: web.Request, name: str, limit: int) -> str:
    """A query parameter as text of at most ``limit`` characters."""
    value = request.query.get(name, "")
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters", details={"field": name})
    return value


def query_number(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise BadRequest(f"{name} must be a whole number", details={"field": name})
    return int(raw)
