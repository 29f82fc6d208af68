"""Where a browser says a request comes from (``Origin``, ``Referer``) counts only when
it is this console: http or https, with the scheme, host and port of the address the
request was sent to or of ``[server] public_url``. Anything else is refused (a POST) or
ignored (the error page's "Go back" leads to the dashboard)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from crmd.console.origins import origin_of, own_origins
from crmd.console.web import SESSION
from tests.conftest import crmd_with
from tests.console.test_security import csrf_of, signed_in

PUBLIC = "https://crm.example.com"


def back_link(page: str) -> str:
    found = re.search(r'<a href="([^"]*)">Go back</a>', page)
    assert found, "the error page has no Go back link"
    return html.unescape(found.group(1))


def here(client: Any) -> str:
    return f"{client.server.host}:{client.server.port}"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8080/customers?x=1", ("http", "127.0.0.1", 8080)),
        ("HTTPS://CRM.Example.com/", ("https", "crm.example.com", 443)),
        ("http://crm.example.com", ("http", "crm.example.com", 80)),
        ("http://[::1]:9000/", ("http", "::1", 9000)),
        ("javascript://127.0.0.1:8080/%0aalert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("ftp://127.0.0.1:8080/", None),
        ("//127.0.0.1:8080/", None),
        ("/customers", None),
        ("http://evil.example\\@127.0.0.1:8080/", None),  # a browser goes to evil.example
        ("http://evil.example@127.0.0.1:8080/", None),
        ("http://127.0.0.1:8080\t/", None),
        ("http://127.0.0.1:99999/", None),
        ("http:///customers", None),
        ("null", None),
    ],
)
def test_an_origin_is_an_http_or_https_scheme_host_and_port(url: str, origin: Any):
    assert origin_of(url) == origin


def test_the_own_origins_are_the_address_asked_and_the_public_url():
    assert own_origins("http://127.0.0.1:8080", PUBLIC) == {
        ("http", "127.0.0.1", 8080),
        ("https", "crm.example.com", 443),
    }


async def test_go_back_leads_to_the_page_the_browser_came_from_on_this_console(client: Any):
    came_from = f"http://{here(client)}/customers?rule=spend%20%3E%201&x=1"
    page = await client.get("/nowhere", headers={"Accept": "text/html", "Referer": came_from})
    assert page.status == 404
    assert back_link(await page.text()) == came_from


@pytest.mark.parametrize(
    "referer",
    [
        "javascript://{here}/%0aalert(document.cookie)",
        "JavaScript://{here}/%0aalert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "https://{here}/customers",  # this server speaks http
        "http://127.0.0.1:1/customers",  # another port
        "http://evil.example/customers",
        "http://evil.example\\@{here}/",
        "http://someone@{here}/",
        "//{here}/customers",
        "",
    ],
)
async def test_go_back_leads_to_the_dashboard_from_anywhere_else(client: Any, referer: str):
    headers = {"Accept": "text/html", "Referer": referer.format(here=here(client))}
    page = await client.get("/nowhere", headers=headers)
    assert page.status == 404
    assert back_link(await page.text()) == "/"


@pytest.mark.parametrize(
    "origin",
    [
        "https://{here}",  # this server speaks http
        "http://127.0.0.1:1",
        "javascript://{here}",
        "http://evil.example",
    ],
)
async def test_a_post_from_another_scheme_host_or_port_is_refused(
    client: Any, system: Any, origin: str
):
    token = await signed_in(client)
    answer = await client.post(
        "/segments",
        data={"csrf": token, "name": "x", "rule": "spend > 1"},
        headers={"Origin": origin.format(here=here(client))},
        allow_redirects=False,
    )
    assert answer.status == 403
    assert "did not come from this console" in await answer.text()
    assert await system.db.segments.count_documents({}) == 0
    answer = await client.post(
        "/segments",
        data={"csrf": token, "name": "x", "rule": "spend > 1"},
        headers={"Origin": f"http://{here(client)}"},
        allow_redirects=False,
    )
    assert answer.status == 303 and await system.db.segments.count_documents({}) == 1


async def test_behind_a_tls_proxy_the_public_url_is_this_console(services: Any, aiohttp_client):
    async with crmd_with(services, server={"public_url": PUBLIC}, auth={"dev_login": True}) as crmd:
        client = await aiohttp_client(crmd.app)
        signed = await client.post("/api/v1/user/dev-login", json={"email": "ops@example.com"})
        # The proxy speaks plain http to crmd, passing the browser's Host on.
        proxied = {
            "Host": "crm.example.com",
            "Cookie": f"{SESSION}={(await signed.json())['token']}",
        }
        token = csrf_of(await (await client.get("/segments", headers=proxied)).text())
        post = {"csrf": token, "name": "x", "rule": "spend > 1"}
        answer = await client.post(
            "/segments", data=post, headers={**proxied, "Origin": PUBLIC}, allow_redirects=False
        )
        assert answer.status == 303
        answer = await client.post(
            "/segments",
            data=post,
            headers={**proxied, "Origin": "https://crm.example.com:8443"},
            allow_redirects=False,
        )
        assert answer.status == 403
        came_from = f"{PUBLIC}/segments"
        page = await client.get(
            "/nowhere", headers={**proxied, "Accept": "text/html", "Referer": came_from}
        )
        assert back_link(await page.text()) == came_from
