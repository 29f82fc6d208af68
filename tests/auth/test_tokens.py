"""crmd's own tokens: every forgery and mistake is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from crmd.auth.tokens import AUDIENCE, ISSUER, TokenError, issue_token, verify_token
from tests.auth.conftest import make_key

SECRET = "s" * 40


def claims(**changes):
    now = int(time.time())
    base = {
        "sub": "u1",
        "email": "a@b.c",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 60,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_fresh_token_verifies():
    token = issue_token("u1", "a@b.c", SECRET, ttl_seconds=60)
    verified = verify_token(token, SECRET)
    assert (verified.sub, verified.email, verified.exp - verified.iat) == ("u1", "a@b.c", 60)


def hs_rs_confusion() -> str:
    """HS256 signed with the RSA public key's PEM: the classic confusion attack."""
    public = (
        make_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims()).encode())
    signature = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


FORGERIES = {
    "expired": (lambda: jwt.encode(claims(iat=1, exp=2), SECRET, "HS256"), "expired"),
    "wrong key": (lambda: jwt.encode(claims(), "x" * 40, "HS256"), "signature"),
    "alg none": (lambda: jwt.encode(claims(), None, "none"), "algorithm"),
    "RS256": (lambda: jwt.encode(claims(), make_key(), "RS256"), "algorithm"),
    "HS/RS confusion": (hs_rs_confusion, "signature"),
    "missing exp": (lambda: jwt.encode(claims(exp=None), SECRET, "HS256"), "'exp'"),
    "missing sub": (lambda: jwt.encode(claims(sub=None), SECRET, "HS256"), "'sub'"),
    "wrong aud": (lambda: jwt.encode(claims(aud="other"), SECRET, "HS256"), "audience"),
    "wrong iss": (lambda: jwt.encode(claims(iss="other"), SECRET, "HS256"), "issuer"),
    "garbage": (lambda: "abc.def", "malformed"),
}


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_forged_or_broken_tokens_are_refused(case: str):
    make, reason = FORGERIES[case]
    with pytest.raises(TokenError, match=reason):
        verify_token(make(), SECRET)
