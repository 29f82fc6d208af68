"""Signing in to the console: by email on this machine when dev login is on, or with
Google (the authorization-code flow: Google sends the browser back with a code that
crmd trades, with its client secret, for an ID token it verifies as the API does)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from aiohttp import web

from crmd.auth.local import from_this_machine
from crmd.console.web import (
    CONSOLE,
    form,
    open_page,
    render,
    safe_next,
    see_other,
    sign_in_cookie,
    sign_out_cookie,
)
from crmd.emails import InvalidEmail
from crmd.errors import CrmdError
from crmd.http.keys import SIGN_IN

routes = web.RouteTableDef()
OAUTH_STATE = "crmd_oauth"
STATE_SECONDS = 600


def _page(
    request: web.Request, *, email: str = "", error: str = "", status: int = 200
) -> web.Response:
    sign_in = request.app[SIGN_IN]
    return render(
        request,
        "signin.html",
        {
            "title": "Sign in",
            "dev": sign_in.config.dev_login and from_this_machine(request),
            "google": sign_in.redirect_flow,
            "next": safe_next(request.query.get("next")),
            "email": email,
            "error": error,
        },
        status=status,
    )


@routes.get("/sign-in")
@open_page
async def sign_in_page(request: web.Request) -> web.Response:
    return _page(request)


@routes.post("/sign-in")
@open_page
async def sign_in_by_email(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    sign_in = request.app[SIGN_IN]
    email = fields.get("email", "")[:320]  # trimmed (spaces only) by normalise_email
    if not sign_in.config.dev_login or not from_this_machine(request):
        return _page(
            request, email=email, error="Signing in by email is not enabled here.", status=403
        )
    try:
        user = await sign_in.dev(email)
    except InvalidEmail as exc:
        return _page(request, email=email, error=f"Email {exc}.", status=422)
    response = see_other(safe_next(fields.get("next")))
    sign_in_cookie(response, request, sign_in.token(user))
    return response


@routes.post("/sign-out")
@open_page
async def sign_out(request: web.Request) -> web.StreamResponse:
    response = see_other("/sign-in", "You are signed out.")
    sign_out_cookie(response)
    return response


@routes.get("/sign-in/google")
@open_page
async def to_google(request: web.Request) -> web.StreamResponse:
    sign_in = request.app[SIGN_IN]
    if not sign_in.redirect_flow:
        return _page(request, error="Google sign-in is not set up on this server.", status=404)
    state = secrets.token_urlsafe(24)
    settings = request.app[CONSOLE]
    query = urlencode(
        {
            "client_id": sign_in.config.google_client_ids[0],
            "redirect_uri": f"{settings.public_url}/sign-in/google/callback",
            "response_type": "code",
            "scope": "openid email profile",
            "state": state,
            "prompt": "select_account",
        }
    )
    response = see_other(f"{sign_in.config.google_auth_url}?{query}")
    response.set_cookie(
        OAUTH_STATE,
        f"{state} {safe_next(request.query.get('next'))}",
        max_age=STATE_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
        path="/sign-in/google",
    )
    return response


@routes.get("/sign-in/google/callback")
@open_page
async def from_google(request: web.Request) -> web.StreamResponse:
    """Google sends the browser back here. The ``state`` must be the one this browser
    was given (a login planted by another site has not got it)."""
    expected, _, next_page = request.cookies.get(OAUTH_STATE, "").partition(" ")
    state = request.query.get("state", "")
    if not expected or not secrets.compare_digest(state, expected):
        return _page(
            request,
            error="That sign-in did not start here, or took too long: try again.",
            status=400,
        )
    if "error" in request.query:
        reason = request.query["error"][:100]
        return _page(request, error=f"Google did not sign you in ({reason}).", status=401)
    code = request.query.get("code", "")
    if not code or len(code) > 4096:
        return _page(request, error="Google sent no sign-in code: try again.", status=400)
    sign_in = request.app[SIGN_IN]
    settings = request.app[CONSOLE]
    try:
        user = await sign_in.google(None, code, f"{settings.public_url}/sign-in/google/callback")
    except CrmdError as exc:
        return _page(request, error=exc.message, status=exc.status)
    response = see_other(safe_next(next_page))
    response.del_cookie(OAUTH_STATE, path="/sign-in/google")
    sign_in_cookie(response, request, sign_in.token(user))
    return response
