"""Sign-in routes: Google (ID token or popup code), dev login, and who am I."""

from __future__ import annotations

from aiohttp import web

from crmd.auth.local import from_this_machine
from crmd.auth.requests import current_user, public
from crmd.auth.schema import DevLogin, GoogleLogin, Me, SignedIn, UserView
from crmd.auth.users import User
from crmd.emails import InvalidEmail
from crmd.errors import Forbidden, Unprocessable
from crmd.http.bodies import json_body
from crmd.http.describe import described
from crmd.http.keys import SIGN_IN
from crmd.http.responses import json_response

routes = web.RouteTableDef()


def signed_in(request: web.Request, user: User) -> web.Response:
    token = request.app[SIGN_IN].token(user)
    return json_response(SignedIn(token, UserView(**user.public()), "success"))


@routes.post("/api/v1/user/oauth")
@public
@described(
    "Sign in with Google (an ID token, or a popup's code)",
    tag="auth",
    body=GoogleLogin,
    ok=SignedIn,
    auth="public",
    errors=(403,),
)
async def oauth(request: web.Request) -> web.Response:
    return await sign_in_with_google(request, await json_body(request, GoogleLogin))


async def sign_in_with_google(request: web.Request, login: GoogleLogin) -> web.Response:
    user = await request.app[SIGN_IN].google(login.credential, login.code)
    return signed_in(request, user)


@routes.post("/api/v1/user/dev-login")
@public
@described(
    "Sign in by email alone (development; callers on this machine only)",
    tag="auth",
    body=DevLogin,
    ok=SignedIn,
    auth="public",
    errors=(403,),
)
async def dev_login(request: web.Request) -> web.Response:
    sign_in = request.app[SIGN_IN]
    if not sign_in.config.dev_login:
        raise Forbidden("dev login is not enabled on this server", code="dev_login_disabled")
    if not from_this_machine(request):
        raise Forbidden("dev login is only for callers on this machine")
    body = await json_body(request, DevLogin)
    try:
        user = await sign_in.dev(body.email)
    except InvalidEmail as exc:
        raise Unprocessable(
            f"email {exc}", details={"field": "$.email"}, code="invalid_email"
        ) from None
    return signed_in(request, user)


@routes.get("/api/v1/user/me")
@described("Who the token belongs to", tag="auth", ok=Me)
async def me(request: web.Request) -> web.Response:
    return json_response(Me(UserView(**current_user(request).public())))
