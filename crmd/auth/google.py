"""Sign-in with Google: verify an ID token (google-auth), or exchange a popup
authorization code for one at Google's token endpoint.

Google's signing certificates are fetched with aiohttp (the event loop never waits on
the network) and cached for as long as their Cache-Control allows.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
import google.auth.exceptions
import google.auth.jwt
import jwt as pyjwt
import msgspec

from crmd.emails import InvalidEmail, normalise_email

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
DEFAULT_MAX_AGE = 300.0
MIN_REFRESH_INTERVAL = 30.0
"""An unknown key id triggers a refresh (Google rotates keys), at most this often."""
_MAX_AGE = re.compile(r"max-age=(\d+)")


class GoogleLoginError(Exception):
    """The ID token or code is not acceptable; the message says why."""


class GoogleLoginForbidden(GoogleLoginError):
    """A valid Google account that the allow-list does not let in."""


class GoogleUnavailable(Exception):
    """Google's certificate or token endpoint did not answer usefully."""


class GoogleIdentity(msgspec.Struct, frozen=True):
    sub: str
    email: str
    name: str = ""
    picture: str = ""
    hd: str = ""


class GoogleCerts:
    """Google's public certificates ({key id: PEM}), cached per their Cache-Control."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.url = url
        self.clock = clock
        self._certs: dict[str, str] = {}
        self._expires = 0.0
        self._fetched = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, key_id: str | None = None) -> dict[str, str]:
        """The current certificates; fetched again when expired, or when ``key_id`` is
        one we do not know (at most every MIN_REFRESH_INTERVAL seconds)."""
        async with self._lock:
            now = self.clock()
            unknown = key_id is not None and key_id not in self._certs
            if now >= self._expires or (unknown and now - self._fetched >= MIN_REFRESH_INTERVAL):
                await self._fetch()
            return self._certs

    async def _fetch(self) -> None:
        try:
            async with self.session.get(
                self.url, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                if response.status != 200:
                    raise GoogleUnavailable(f"certificates: HTTP {response.status}")
                certs = msgspec.json.decode(await response.read(), type=dict[str, str])
                cache_control = response.headers.get("Cache-Control", "")
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
            raise GoogleUnavailable(f"certificates: {type(exc).__name__}: {exc}") from None
        match = _MAX_AGE.search(cache_control)
        max_age = float(match.group(1)) if match else DEFAULT_MAX_AGE
        if "no-store" in cache_control or "no-cache" in cache_control:
            max_age = 0.0
        now = self.clock()
        self._certs, self._expires, self._fetched = certs, now + max_age, now


def key_id(token: str) -> str | None:
    try:
        kid = pyjwt.get_unverified_header(token).get("kid")
    except pyjwt.PyJWTError:
        raise GoogleLoginError("ID token is malformed") from None
    return kid if isinstance(kid, str) else None


def verify_id_token(
    token: str,
    certs: Mapping[str, str],
    client_ids: Sequence[str],
    clock_skew: int,
    allowed_domains: Sequence[str] = (),
    allowed_emails: Sequence[str] = (),
) -> GoogleIdentity:
    """Check signature, audience, issuer, expiry and a verified email; then the
    allow-list. Returns who signed in, their email as ``normalise_email`` spells it, or
    raises GoogleLoginError saying what failed."""
    try:
        claims: dict[str, Any] = google.auth.jwt.decode(  # type: ignore[no-untyped-call]
            token,
            certs=dict(certs),
            audience=list(client_ids),
            clock_skew_in_seconds=clock_skew,
        )
    except RecursionError:  # JSON nested thousands deep in the token
        raise GoogleLoginError("ID token is malformed") from None
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        raise GoogleLoginError(f"ID token rejected: {_reason(exc)}") from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise GoogleLoginError("ID token rejected: not issued by Google")
    if claims.get("email_verified") not in (True, "true"):
        raise GoogleLoginError("ID token rejected: the email address is not verified")
    try:
        identity = msgspec.convert(claims, GoogleIdentity)
    except msgspec.ValidationError as exc:
        raise GoogleLoginError(f"ID token rejected: {exc}") from None
    try:
        # Spelt as every other address crmd keeps: the allow-list and the users'
        # records compare it with addresses that were.
        identity = msgspec.structs.replace(identity, email=normalise_email(identity.email))
    except InvalidEmail as exc:
        raise GoogleLoginError(f"ID token rejected: email {exc}") from None
    if allowed_domains or allowed_emails:
        emails = {e.lower() for e in allowed_emails}
        domains = {d.lower() for d in allowed_domains}
        if identity.email not in emails and identity.hd.lower() not in domains:
            raise GoogleLoginForbidden(f"{identity.email} is not allowed to sign in here")
    return identity


def _reason(exc: BaseException) -> str:
    text = str(exc)
    lowered = text.lower()
    if "expired" in lowered:
        return "expired"
    if "audience" in lowered:
        return "wrong audience"
    if "signature" in lowered or "could not verify" in lowered:
        return "bad signature"
    if "algorithm" in lowered:
        return "unsupported signing algorithm"
    if "certificate for key id" in lowered:
        return "signed with an unknown key"
    return text[:200]


async def exchange_code(
    session: aiohttp.ClientSession,
    token_url: str,
    code: str,
    client_id: str,
    client_secret: str,
    redirect_uri: str = "postmessage",
) -> str:
    """Trade an authorization code for an ID token: a popup's (redirect_uri
    ``postmessage``, as Google Identity Services' code client uses), or the console's
    redirect flow's (its callback address)."""
    form = {
        "code": code,
        "client_id": client_id,
        "client_secret": client_secret,
        "redirect_uri": redirect_uri,
        "grant_type": "authorization_code",
    }
    try:
        async with session.post(
            token_url, data=form, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise GoogleUnavailable(f"token endpoint: {type(exc).__name__}: {exc}") from None
    try:
        reply = msgspec.json.decode(body, type=dict[str, Any])
    except msgspec.DecodeError:
        raise GoogleUnavailable(f"token endpoint: HTTP {status}, not JSON") from None
    if status in (400, 401):
        error = reply.get("error", "invalid_grant")
        raise GoogleLoginError(f"authorization code rejected by Google: {error}")
    if status != 200 or not isinstance(reply.get("id_token"), str):
        raise GoogleUnavailable(f"token endpoint: HTTP {status} without an id_token")
    id_token: str = reply["id_token"]
    return id_token
