"""Sign-in routes: Google (ID token or popup code), dev login, and who am I."""

from __future__ import annotations

from typing import Annotated

import msgspec
import structlog
from aiohttp import web

from crmd.auth.google import (
    GoogleLoginError,
    GoogleLoginForbidden,
    GoogleUnavailable,
    exchange_code,
    key_id,
    verify_id_token,
)
from crmd.auth.middleware import current_user, public
from crmd.auth.tokens import issue_token
from crmd.auth.users import User, upsert_dev_user, upsert_user
from crmd.config import is_loopback
from crmd.emails import InvalidEmail
from crmd.errors import BadRequest, Forbidden, NotFound, Unauthorized, Unavailable, Unprocessable
from crmd.http.bodies import json_body
from crmd.http.keys import RUNTIME
from crmd.runtime.context import Runtime

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


class GoogleLogin(msgspec.Struct, forbid_unknown_fields=False):
    credential: Token | None = None
    code: Token | None = None


class DevLogin(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    """Normalised (and refused when it hides characters) by ``normalise_email``."""


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PROXY_HEADERS = frozenset({
    "forwarded", "via", "x-real-ip", "x-client-ip", "true-client-ip", "cf-connecting-ip",
    "fastly-client-ip", "x-cluster-client-ip", "x-original-forwarded-for",
})  # fmt: skip


def through_a_proxy(request: web.Request) -> bool:
    """Any header a proxy or load balancer adds; and HTTP/1.0, which nginx's
    ``proxy_pass`` speaks by default (browsers and curl speak 1.1 or newer)."""
    if request.version < (1, 1):
        return True
    return any(
        name.lower() in PROXY_HEADERS or name.lower().startswith("x-forwarded-")
        for name in request.headers
    )


def from_this_machine(request: web.Request) -> bool:
    """A loopback peer that asked for a loopback name and came through no proxy: a
    proxy, an SSRF or a DNS-rebinding page on this host fails at least one of these.
    A proxy that adds no header and speaks HTTP/1.1 cannot be told from a local
    caller, which is why dev login also needs crmd to listen on loopback only and
    must never be turned on behind one (see the README's Configuration)."""
    if through_a_proxy(request):
        return False
    host = request.url.host or ""
    return is_loopback(request.remote or "") and host.strip("[]").lower() in LOCAL_HOSTS


def signed_in(runtime: Runtime, user: User) -> web.Response:
    token = issue_token(
        user.id, user.email, runtime.jwt_secret, runtime.config.auth.jwt_ttl_seconds
    )
    return web.json_response({"token": token, "user": user.public(), "message": "success"})


async def google_sign_in(runtime: Runtime, login: GoogleLogin) -> web.Response:
    auth = runtime.config.auth
    if not auth.google_login:
        raise NotFound("Google sign-in is not enabled on this server", code="login_disabled")
    if bool(login.credential) == bool(login.code):
        raise BadRequest("send exactly one of 'credential' (an ID token) or 'code'")
    try:
        id_token = login.credential
        if id_token is None:
            if not auth.google_client_secret:
                raise NotFound(
                    "the authorization-code flow needs auth.google_client_secret",
                    code="login_disabled",
                )
            assert login.code is not None
            id_token = await exchange_code(
                runtime.http,
                auth.google_token_url,
                login.code,
                auth.google_client_ids[0],
                auth.google_client_secret,
            )
        certs = await runtime.google_certs.get(key_id(id_token))
        identity = verify_id_token(
            id_token,
            certs,
            auth.google_client_ids,
            auth.clock_skew_seconds,
            auth.allowed_domains,
            auth.allowed_emails,
        )
    except GoogleLoginForbidden as exc:
        log.warning("auth.login_forbidden", reason=str(exc))
        raise Forbidden(str(exc)) from None
    except GoogleLoginError as exc:
        log.warning("auth.login_rejected", reason=str(exc))
        raise Unauthorized(str(exc)) from None
    except GoogleUnavailable as exc:
        log.error("auth.google_unavailable", error=str(exc))
        raise Unavailable("Google sign-in is unavailable; try again shortly") from None
    user = await upsert_user(
        runtime.db, identity.sub, identity.email, identity.name, identity.picture, identity.hd
    )
    log.info("auth.signed_in", user_id=user.id, method="google")
    return signed_in(runtime, user)


@routes.post("/api/v1/user/oauth")
@public
async def oauth(request: web.Request) -> web.Response:
    return await google_sign_in(request.app[RUNTIME], await json_body(request, GoogleLogin))


@routes.get("/api/v1/user/oauth")
@public
async def oauth_query(request: web.Request) -> web.Response:
    """The original frontend sends the popup's code as a query parameter."""
    try:
        login = msgspec.convert(dict(request.query), GoogleLogin)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc)) from None
    return await google_sign_in(request.app[RUNTIME], login)


@routes.post("/api/v1/user/dev-login")
@public
async def dev_login(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if not runtime.config.auth.dev_login:
        raise NotFound("dev login is not enabled on this server", code="login_disabled")
    if not from_this_machine(request):
        raise Forbidden("dev login is only for callers on this machine")
    body = await json_body(request, DevLogin)
    try:
        user = await upsert_dev_user(runtime.db, body.email)
    except InvalidEmail as exc:
        raise Unprocessable(f"email {exc}", details={"field": "$.email"},
                            code="invalid_body") from None  # fmt: skip
    log.info("auth.signed_in", user_id=user.id, method="dev")
    return signed_in(runtime, user)


@routes.get("/api/v1/user/me")
async def me(request: web.Request) -> web.Response:
    return web.json_response({"user": current_user(request).public()})
