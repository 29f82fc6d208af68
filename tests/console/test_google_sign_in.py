"""Signing in to the console with Google, in the browser, against a local stand-in for
Google's consent page, token endpoint and certificates: the browser goes to Google and
comes back with a code, which crmd trades (with its client secret and the same
redirect address) for an ID token it verifies. A callback that did not start in this
browser, or that Google refused, signs no one in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from aiohttp import web
from playwright.async_api import expect

from crmd.config import Config
from crmd.services.embedded import Urls
from tests.auth.conftest import CLIENT_ID, CLIENT_SECRET, KID, Google, certificate_pem, make_key
from tests.conftest import make_test_config
from tests.console.conftest import Watched


@dataclass
class Consent:
    """Google's side: what it was asked, and what the person chooses there."""

    google: Google
    refuse: bool = False
    asked: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
async def consent(aiohttp_server: Any) -> AsyncIterator[Consent]:
    google = Google(key=make_key())
    stand_in = Consent(google)
    pem = certificate_pem(google.key)

    async def authorize(request: web.Request) -> web.Response:
        query = dict(request.query)
        stand_in.asked.append(query)
        back = query["redirect_uri"]
        if stand_in.refuse:
            raise web.HTTPFound(
                f"{back}?{urlencode({'error': 'access_denied', 'state': query['state']})}"
            )
        code = f"code-{len(stand_in.asked)}"
        google.codes[code] = google.id_token(email="grace@example.com", sub="42")
        raise web.HTTPFound(f"{back}?{urlencode({'code': code, 'state': query['state']})}")

    async def token(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        google.token_requests.append(form)
        asked = stand_in.asked[-1] if stand_in.asked else {}
        if (
            form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
            or form.get("redirect_uri") != asked.get("redirect_uri")
            or form.get("code") not in google.codes
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"id_token": google.codes.pop(form["code"])})

    async def certs(request: web.Request) -> web.Response:
        return web.json_response({KID: pem})

    app = web.Application()
    app.router.add_get("/o/oauth2/v2/auth", authorize)
    app.router.add_post("/token", token)
    app.router.add_get("/certs", certs)
    server = await aiohttp_server(app)
    google.url = str(server.make_url("")).rstrip("/")
    yield stand_in


@pytest.fixture
def config(services: Urls, port: int, consent: Consent) -> Config:
    url = consent.google.url
    return make_test_config(
        services,
        server={"port": port},
        auth={
            "dev_login": False,
            "google_login": True,
            "google_client_ids": [CLIENT_ID],
            "google_client_secret": CLIENT_SECRET,
            "google_auth_url": f"{url}/o/oauth2/v2/auth",
            "google_token_url": f"{url}/token",
            "google_certs_url": f"{url}/certs",
        },
    )


async def test_an_operator_signs_in_with_google_and_lands_where_they_were_going(
    page: Watched, consent: Consent
):
    p = page.page
    await page.go("/campaigns")
    await expect(p.get_by_label("Email", exact=True)).to_have_count(0)  # no dev login here
    await page.shot("sign-in")
    await p.get_by_role("link", name="Sign in with Google").click()
    await p.wait_for_url(page.base + "/campaigns")
    await expect(p.get_by_role("heading", name="Campaigns")).to_be_visible()
    await expect(p.get_by_text("grace@example.com")).to_be_visible()
    asked = consent.asked[0]
    assert asked["client_id"] == CLIENT_ID and asked["response_type"] == "code"
    assert asked["redirect_uri"] == f"{page.base}/sign-in/google/callback"
    assert "openid" in asked["scope"].split() and len(asked["state"]) >= 32
    (traded,) = consent.google.token_requests
    assert traded["grant_type"] == "authorization_code"
    cookies = {c["name"]: c for c in await p.context.cookies()}
    assert cookies["crmd_session"]["httpOnly"] and cookies["crmd_session"]["sameSite"] == "Lax"
    assert "crmd_oauth" not in cookies  # the state is used once
    await page.shot("signed-in")


async def test_a_callback_that_did_not_start_here_signs_no_one_in(page: Watched, consent: Consent):
    page.allowed.append(r"status of 4[0-9]{2} \(")
    p = page.page
    # A planted callback (another site sends the browser here with its own code).
    consent.google.codes["planted"] = consent.google.id_token(email="mallory@example.com")
    answer = await p.goto(f"{page.base}/sign-in/google/callback?code=planted&state=forged")
    assert answer is not None and answer.status == 400
    await expect(p.get_by_role("alert")).to_contain_text("did not start here")
    assert consent.google.token_requests == []
    # The person says no at Google.
    consent.refuse = True
    await page.go("/sign-in")
    await p.get_by_role("link", name="Sign in with Google").click()
    await expect(p.get_by_role("alert")).to_contain_text(
        "Google did not sign you in (access_denied)"
    )
    await page.shot("refused")
    assert "crmd_session" not in {c["name"] for c in await p.context.cookies()}
    # Google's answer reaches crmd only with the state this browser was given.
    state = consent.asked[-1]["state"]
    assert parse_qs(urlsplit(p.url).query)["state"] == [state]
