"""Sign-in routes: Google (ID token or popup code), dev login, and who am I."""

from __future__ import annotations

from typing import Annotated

import msgspec
from aiohttp import web

from crmd.auth.requests import current_user, public
from crmd.auth.users import User
from crmd.config import is_loopback
from crmd.emails import InvalidEmail
from crmd.errors import Forbidden, Unprocessable
from crmd.http.bodies import Body, json_body
from crmd.http.describe import described
from crmd.http.keys import SIGN_IN
from crmd.http.responses import json_response

routes = web.RouteTableDef()

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class GoogleLogin(Body):
    credential: Token | None = None
    code: Token | None = None


class DevLogin(Body):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    """Normalised (and refused when it hides characters) by ``normalise_email``."""


class UserView(msgspec.Struct):
    id: str
    email: str
    name: str
    picture: str


class SignedIn(msgspec.Struct):
    token: str
    """Send it as ``Authorization: Bearer <token>``."""
    user: UserView
    message: str


class Me(msgspec.Struct):
    user: UserView


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PROXY_HEADERS = frozenset({"forwarded", "via", "forwarded-for", "x-forwarded"})
PROXY_WORDS = (
    "x-forwarded-", "real-ip", "client-ip", "clientip", "connecting-ip", "x-original-",
    "x-host", "x-proxy", "proxyuser", "x-envoy-", "cloudfront-viewer", "x-azure-",
    "x-cluster-client", "x-appengine-", "akamai-", "fastly-",
)  # fmt: skip
"""Headers that reverse proxies, load balancers and CDNs add, by name or by the words
their names share (X-Forwarded-*, X-Real-IP, True-Client-IP, CF-Connecting-IP...)."""


def through_a_proxy(request: web.Request) -> bool:
    """Any header a proxy, load balancer or CDN adds; and HTTP/1.0, which nginx's
    ``proxy_pass`` speaks by default (browsers and curl speak 1.1 or newer)."""
    if request.version < (1, 1):
        return True
    for name in request.headers:
        lowered = name.lower()
        if lowered in PROXY_HEADERS or any(word in lowered for word in PROXY_WORDS):
            return True
    return False


def from_this_machine(request: web.Request) -> bool:
    """A loopback peer that asked for a loopback name and came through no proxy: a
    proxy, an SSRF or a DNS-rebinding page on this host fails at least one of these.
    A proxy that adds no header and speaks HTTP/1.1 cannot be told from a local
    caller, which is why dev login also needs crmd to listen on loopback only and
    must never be turned on behind one (see docs/security.md, "Signing in")."""
    if through_a_proxy(request):
        return False
    host = request.url.host or ""
    return is_loopback(request.remote or "") and host.strip("[]").lower() in LOCAL_HOSTS


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
