"""crmd's own API tokens: HS256 JWTs with every claim required and the algorithm pinned."""

from __future__ import annotations

import time

import jwt
import msgspec

ISSUER = "crmd"
AUDIENCE = "crmd-api"
ALGORITHM = "HS256"
REQUIRED = ["exp", "iat", "iss", "aud", "sub"]


class TokenError(Exception):
    """The token is missing, malformed, expired, forged or not for crmd."""


class Claims(msgspec.Struct, frozen=True):
    sub: str
    email: str
    iat: int
    exp: int
    ws: str = ""
    """The workspace the token works in; empty: the person's own."""


def issue_token(
    user_id: str,
    email: str,
    secret: str,
    ttl_seconds: int,
    now: float | None = None,
    workspace: str = "",
) -> str:
    issued = int(time.time() if now is None else now)
    payload = {
        "sub": user_id,
        "email": email,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if workspace:
        payload["ws"] = workspace
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify_token(token: str, secret: str, leeway: int = 0) -> Claims:
    """The token's claims, or TokenError saying what is wrong with it. Only HS256 is
    accepted: ``alg: none`` and RS/HS confusion fail here, whatever the header says."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=leeway,
            options={"require": REQUIRED},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidAudienceError:
        raise TokenError("token is for another audience") from None
    except jwt.InvalidIssuerError:
        raise TokenError("token from another issuer") from None
    except jwt.InvalidAlgorithmError:
        raise TokenError("token signed with an algorithm crmd does not accept") from None
    except jwt.InvalidSignatureError:
        raise TokenError("token signature does not verify") from None
    except (jwt.PyJWTError, UnicodeError):  # UnicodeError: bytes that are no text
        raise TokenError("malformed token") from None
    try:
        return msgspec.convert(payload, Claims)
    except msgspec.ValidationError as exc:
        raise TokenError(f"token claims are malformed: {exc}") from None
