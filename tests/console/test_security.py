"""The console's defences, at the HTTP level: the session cookie's flags, CSRF and
origin checks on every POST, the security headers on every answer (pages, static
files, errors), no inline script or style anywhere, escaping, and a session cookie that
opens no door to the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from crmd.console import STATIC
from crmd.console.web import SECURITY_HEADERS, SESSION
from tests.conftest import crmd_with
from tests.ingest.conftest import upload, wait_done

TEMPLATES = Path(STATIC).parent / "templates"


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


async def signed_in(client: Any, email: str = "ops@example.com") -> str:
    """Sign in through the form, as a browser does; the client keeps the cookie. The
    page's CSRF token is returned."""
    page = await client.get("/sign-in")
    token = csrf_of(await page.text())
    answer = await client.post(
        "/sign-in", data={"csrf": token, "email": email, "next": "/"}, allow_redirects=False
    )
    assert answer.status == 303 and answer.headers["Location"] == "/"
    return csrf_of(await (await client.get("/")).text())


def assert_guarded(answer: Any) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, (answer.url, name)
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "unsafe-inline" not in policy


async def test_a_visitor_is_sent_to_sign_in_and_comes_back(client: Any):
    answer = await client.get("/campaigns?status=x", allow_redirects=False)
    assert answer.status == 303
    assert answer.headers["Location"] == "/sign-in?next=/campaigns?status=x"
    page = await client.get("/sign-in?next=/campaigns")
    html = await page.text()
    assert '<label for="email">Email</label>' in html and ">Sign in</button>" in html
    assert "Sign in with Google" not in html  # not configured here
    assert_guarded(page)
    # Somewhere else after sign-in is refused: the dashboard instead.
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        client.session.cookie_jar.clear()
        token = csrf_of(await (await client.get("/sign-in")).text())
        answer = await client.post(
            "/sign-in",
            data={"csrf": token, "email": "ops@example.com", "next": target},
            allow_redirects=False,
        )
        assert answer.headers["Location"] == "/", target


async def test_the_session_cookie_is_httponly_lax_and_ends_at_sign_out(client: Any):
    page = await client.get("/sign-in")
    token = csrf_of(await page.text())
    answer = await client.post(
        "/sign-in", data={"csrf": token, "email": "ops@example.com"}, allow_redirects=False
    )
    cookie = answer.cookies[SESSION]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert cookie["path"] == "/" and int(cookie["max-age"]) > 3600
    token = csrf_of(await (await client.get("/")).text())
    answer = await client.post("/sign-out", data={"csrf": token}, allow_redirects=False)
    assert answer.status == 303
    assert answer.cookies[SESSION].value == "" and answer.cookies[SESSION]["max-age"] == "0"
    assert (await client.get("/", allow_redirects=False)).status == 303
    # A cookie that is not a token of ours is as good as none (and is cleared).
    client.session.cookie_jar.update_cookies({SESSION: "not.a.token"})
    answer = await client.get("/customers", allow_redirects=False)
    assert answer.status == 303 and answer.cookies[SESSION].value == ""


async def test_the_cookie_is_secure_when_crmd_is_served_over_https(services: Any, aiohttp_client):
    async with crmd_with(
        services, server={"public_url": "https://crm.example.com"}, auth={"dev_login": True}
    ) as crmd:
        client = await aiohttp_client(crmd.app)
        page = await client.get("/sign-in")
        pre = page.cookies["crmd_pre"]
        assert pre["secure"] and pre["httponly"]
        # (The test speaks plain HTTP, so its cookie jar keeps Secure cookies back.)
        answer = await client.post(
            "/sign-in",
            data={"csrf": csrf_of(await page.text()), "email": "ops@example.com"},
            headers={"Cookie": f"crmd_pre={pre.value}"},
            allow_redirects=False,
        )
        assert answer.status == 303
        assert answer.cookies[SESSION]["secure"] and answer.cookies[SESSION]["httponly"]


async def test_every_post_needs_this_sessions_token_and_this_origin(client: Any, system: Any):
    token = await signed_in(client)
    cases = {
        "no token": ({"name": "x", "rule": "spend > 1"}, {}),
        "another's token": ({"csrf": "0" * 64, "name": "x", "rule": "spend > 1"}, {}),
        "another site": (
            {"csrf": token, "name": "x", "rule": "spend > 1"},
            {"Origin": "https://evil.example"},
        ),
        "another site, no Origin": (
            {"csrf": token, "name": "x", "rule": "spend > 1"},
            {"Sec-Fetch-Site": "cross-site"},
        ),
    }
    for case, (data, headers) in cases.items():
        answer = await client.post("/segments", data=data, headers=headers, allow_redirects=False)
        assert answer.status == 403, case
        assert "did not come from this console" in await answer.text(), case
    # The scripts' JSON routes take the token as a header, and refuse without it.
    answer = await client.post("/segments/count", json={"rule": "spend > 1"})
    assert answer.status == 403 and (await answer.json())["error"]["code"] == "bad_csrf"
    answer = await client.post(
        "/segments/count", json={"rule": "spend > 1"}, headers={"X-CSRF-Token": token}
    )
    assert answer.status == 200 and (await answer.json())["audienceSize"] == 0
    # An upload's token is read before its file.
    form = aiohttp.FormData()
    form.add_field("kind", "customers")
    form.add_field("file", b"customer_external_id\nC1\n", filename="c.csv")
    answer = await client.post("/imports", data=form)
    assert answer.status == 403
    assert await system.db.segments.count_documents({}) == 0
    assert await system.db.uploads.count_documents({}) == 0
    answer = await client.post(
        "/segments", data={"csrf": token, "name": "ok", "rule": "spend > 1"}, allow_redirects=False
    )
    assert answer.status == 303 and await system.db.segments.count_documents({}) == 1


async def test_the_session_cookie_opens_no_door_to_the_api(client: Any):
    await signed_in(client)
    answer = await client.get("/api/v1/customers")
    assert answer.status == 401
    answer = await client.post("/api/v1/segments", json={"name": "x", "rule": "spend > 1"})
    assert answer.status == 401


@pytest.mark.parametrize(
    "path", ["/", "/customers", "/imports", "/segments", "/campaigns/new", "/system"]
)
async def test_every_answer_carries_the_security_headers(client: Any, path: str):
    await signed_in(client)
    page = await client.get(path)
    assert page.status == 200
    assert_guarded(page)
    assert page.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(r"app;dur=[0-9.]+", page.headers["Server-Timing"])
    html = await page.text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), "an inline style or handler"
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"(https?:)?//", src), f"loads from another host: {src}"
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        static = await client.get(asset)
        assert static.status == 200
        assert_guarded(static)
    missing = await client.get("/customers/000000000000000000000000")
    assert missing.status == 404 and "Not found" in await missing.text()
    assert_guarded(missing)


def test_no_template_or_script_embeds_a_style_a_handler_or_another_host():
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"\sstyle=|<style|\son[a-z]+=|javascript:", text), template.name
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert "|safe" not in text, f"{template.name} turns escaping off"
    script = (Path(STATIC) / "console.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|eval\(|new Function", script)
    for asset in Path(STATIC).iterdir():
        assert not re.search(r"https?://", asset.read_text()), asset.name


async def test_a_customer_named_like_markup_shows_as_text(client: Any, ingesting: Any, auth: Any):
    text = "customer_external_id,name,email\nX1,<img src=x onerror=alert(1)>,x1@example.com\n"
    answer = await (await upload(client, auth, "customers", text)).json()
    await wait_done(client, auth, answer["uploadId"])
    await signed_in(client)
    html = await (await client.get("/customers")).text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<img src=x" not in html


async def test_addresses_and_fields_that_try_to_trick_the_console_are_refused(
    client: Any, system: Any
):
    for target in ("/\t/evil.example", "/\n/evil.example", "/%09/x\r\nSet-Cookie: a=b"):
        client.session.cookie_jar.clear()
        token = csrf_of(await (await client.get("/sign-in")).text())
        answer = await client.post(
            "/sign-in",
            data={"csrf": token, "email": "ops@example.com", "next": target},
            allow_redirects=False,
        )
        assert answer.status == 303 and answer.headers["Location"] == "/", repr(target)
    token = await signed_in(client)
    for path in ("/customers?before=²", "/imports?page=٣", "/campaigns?page=¹", "/orders?page=²"):
        assert (await client.get(path)).status == 400, path
    for path in ("/api/v1/campaigns?cursor=²", "/api/v1/customers?cursor=²"):
        assert (await client.get(path, headers={"Accept": "application/json"})).status in (
            400,
            401,
        )
    # What a page says comes from crmd, not from the address.
    assert (
        "Your account is locked"
        not in await (
            await client.get("/?notice=Your account is locked&problem=Your account is locked")
        ).text()
    )
    answer = await client.post(
        "/segments",
        data={"csrf": token, "action": "bogus", "name": "x", "rule": "spend > 1"},
        allow_redirects=False,
    )
    assert answer.status == 400 and await system.db.segments.count_documents({}) == 0
    answer = await client.post(
        "/segments", data={"csrf": token, "name": "Kept", "rule": "spend > 1"}
    )
    assert "Saved Kept" in await answer.text()  # said once, after the redirect
    assert "Saved Kept" not in await (await client.get("/segments")).text()
