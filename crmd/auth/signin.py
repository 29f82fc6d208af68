"""Signing in: Google's ID tokens and codes, dev login, and crmd's own tokens checked on
every request. Holds what that needs (the users, the token secret, the auth settings,
Google's certificates) so that handlers and middleware are handed one object."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import structlog
from pymongo.asynchronous.database import AsyncDatabase

from crmd.auth.google import (
    GoogleCerts,
    GoogleLoginError,
    GoogleLoginForbidden,
    GoogleUnavailable,
    exchange_code,
    key_id,
    verify_id_token,
)
from crmd.auth.tokens import TokenError, issue_token, verify_token
from crmd.auth.users import User, find_user, upsert_dev_user, upsert_user
from crmd.config import AuthConfig
from crmd.errors import BadRequest, Forbidden, Unauthorized, Unavailable

log = structlog.get_logger(__name__)
USER_FRESH = 5.0
"""Seconds a user read for a token stands for that user's next requests: a page or a
dashboard asking every second costs the database no read of who is asking."""
USERS_KEPT = 10_000


class SignIn:
    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        secret: str,
        config: AuthConfig,
        http: aiohttp.ClientSession,
    ) -> None:
        self.db = db
        self.secret = secret
        self.config = config
        self.http = http
        self.google_certs = GoogleCerts(http, config.google_certs_url)
        self._users: dict[str, tuple[float, User]] = {}

    def token(self, user: User, workspace: str = "") -> str:
        """A token for ``user``, working in ``workspace`` unless a request names another
        (empty: their own workspace)."""
        return issue_token(
            user.id, user.email, self.secret, self.config.jwt_ttl_seconds, workspace=workspace
        )

    async def user_for_token(self, token: str) -> User:
        """The token's user, or Unauthorized / Forbidden saying why not. The allow-list
        is checked on every request, so removing someone takes effect at once."""
        return (await self.user_and_workspace(token))[0]

    async def user_and_workspace(self, token: str) -> tuple[User, str]:
        """The token's user and the workspace it names (its ``ws`` claim, or empty)."""
        try:
            claims = verify_token(token, self.secret, self.config.clock_skew_seconds)
        except TokenError as exc:
            raise Unauthorized(str(exc)) from None
        user = await self._user(claims.sub)
        if user is None:
            raise Unauthorized("the token's user no longer exists")
        if user.is_dev and not self.config.dev_login:
            raise Unauthorized("dev login is off: sign in with Google")
        if not allowed(user, self.config.allowed_domains, self.config.allowed_emails):
            raise Forbidden(f"{user.email} is no longer allowed to use this server")
        return user, claims.ws

    async def _user(self, user_id: str) -> User | None:
        """The user, as read at most ``USER_FRESH`` seconds ago."""
        now = time.monotonic()
        kept = self._users.get(user_id)
        if kept is not None and now - kept[0] < USER_FRESH:
            return kept[1]
        user = await find_user(self.db, user_id)
        if len(self._users) >= USERS_KEPT:
            self._users.clear()  # (ten thousand users signed in within seconds)
        if user is not None:
            self._users[user_id] = (now, user)
        return user

    async def google(
        self, credential: str | None, code: str | None, redirect_uri: str = "postmessage"
    ) -> User:
        """The user a Google ID token (or an authorization code) signs in."""
        config = self.config
        if not config.google_login:
            raise Forbidden(
                "Google sign-in is not enabled on this server", code="google_login_disabled"
            )
        if bool(credential) == bool(code):
            raise BadRequest("send exactly one of 'credential' (an ID token) or 'code'")
        try:
            id_token = credential or await self._exchange(code or "", redirect_uri)
            certs = await self.google_certs.get(key_id(id_token))
            identity = verify_id_token(
                id_token,
                certs,
                config.google_client_ids,
                config.clock_skew_seconds,
                config.allowed_domains,
                config.allowed_emails,
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
            self.db, identity.sub, identity.email, identity.name, identity.picture, identity.hd
        )
        log.info("auth.signed_in", user_id=user.id, method="google")
        return user

    @property
    def redirect_flow(self) -> bool:
        """Whether the console can send people to Google and take them back: Google
        sign-in with a client secret (the code is traded on the server)."""
        return bool(self.config.google_login and self.config.google_client_secret)

    async def _exchange(self, code: str, redirect_uri: str) -> str:
        if not self.config.google_client_secret:
            raise Forbidden(
                "the authorization-code flow needs auth.google_client_secret",
                code="google_code_flow_disabled",
            )
        return await exchange_code(
            self.http,
            self.config.google_token_url,
            code,
            self.config.google_client_ids[0],
            self.config.google_client_secret,
            redirect_uri,
        )

    async def dev(self, email: str) -> User:
        """The dev user for ``email`` (made if new); the caller checked where the
        request came from."""
        if not self.config.dev_login:
            raise Forbidden("dev login is not enabled on this server", code="dev_login_disabled")
        user = await upsert_dev_user(self.db, email)
        log.info("auth.signed_in", user_id=user.id, method="dev")
        return user


def allowed(user: User, domains: list[str], emails: list[str]) -> bool:
    """On the allow-list, or no allow-list at all."""
    if not domains and not emails:
        return True
    return user.email.lower() in {e.lower() for e in emails} or user.hd.lower() in {
        d.lower() for d in domains
    }
