"""A local stand-in for Google: its certificate endpoint (in Google's format, with
Cache-Control) and its token endpoint, and ID tokens minted with the test key."""

from __future__ import annotations

import datetime
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import msgspec
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from crmd.app import Crmd, open_crmd
from crmd.config import Config

CLIENT_ID = "test-client.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret"
KID = "test-key-1"


def make_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate_pem(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test.googleapis.invalid")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Google:
    key: rsa.RSAPrivateKey
    url: str = ""
    cert_fetches: int = 0
    certs_status: int = 200
    token_requests: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": CLIENT_ID,
            "sub": "1100000000000001",
            "email": "ada@example.com",
            "email_verified": True,
            "name": "Ada Lovelace",
            "picture": "https://example.com/ada.png",
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def id_token(self, key: rsa.RSAPrivateKey | None = None, kid: str = KID, **changes: Any) -> str:
        return jwt.encode(
            self.claims(**changes), key or self.key, algorithm="RS256", headers={"kid": kid}
        )


@pytest.fixture
async def google(aiohttp_server: Any) -> AsyncIterator[Google]:
    stand_in = Google(key=make_key())
    pem = certificate_pem(stand_in.key)

    async def certs(request: web.Request) -> web.Response:
        stand_in.cert_fetches += 1
        if stand_in.certs_status != 200:
            return web.Response(status=stand_in.certs_status)
        return web.json_response({KID: pem}, headers={"Cache-Control": "public, max-age=3600"})

    async def token(request: web.Request) -> web.Response:
        form = dict(await request.post())
        stand_in.token_requests.append({k: str(v) for k, v in form.items()})
        expected = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": "postmessage",
            "grant_type": "authorization_code",
        }
        code = str(form.get("code", ""))
        if any(form.get(k) != v for k, v in expected.items()) or code not in stand_in.codes:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": "ya29.x", "id_token": stand_in.codes[code]})

    app = web.Application()
    app.router.add_get("/oauth2/v1/certs", certs)
    app.router.add_post("/token", token)
    server = await aiohttp_server(app)
    stand_in.url = str(server.make_url(""))
    yield stand_in


@pytest.fixture
def google_config(config: Config, google: Google) -> Config:
    auth = msgspec.structs.replace(
        config.auth,
        google_login=True,
        google_client_ids=[CLIENT_ID],
        google_client_secret=CLIENT_SECRET,
        google_certs_url=f"{google.url}/oauth2/v1/certs",
        google_token_url=f"{google.url}/token",
    )
    return msgspec.structs.replace(config, auth=auth)


@pytest.fixture
async def google_client(aiohttp_client: Any, system: Crmd, google_config: Config) -> Any:
    """crmd with Google sign-in on, on the same data as ``system``."""
    async with open_crmd(google_config) as crmd:
        yield await aiohttp_client(crmd.app)
