"""The issue's whole loop, as an operator meets it: a campaign sent through the smtp
vendor to a real SMTP server, whose messages are then bounced (a DSN mailed back to the
bounces listener), complained about (an ARF report), opened and clicked (a browser
showing the received message and following its link), and each of those shown on the
campaign's page, in its stats and on the suppression list."""

from __future__ import annotations

import asyncio
import email
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from playwright.async_api import Browser, Route, expect

from crmd.services.children import free_port
from crmd.services.embedded import Urls
from crmd.testing import load_customers, running_crmd, signed_in, wait_for_campaign
from crmd.testing.running import TEST_EMAIL
from tests.bounces import samples
from tests.console.conftest import folder_for, watched

SENDER = "Shop <news@shop.example>"
HTML = (
    "<html><body><p>Hi {first_name|there},</p>"
    '<p><a id="sale" href="https://shop.example/sale">See the sale</a></p></body></html>'
)


@dataclass
class Mailbox:
    """The SMTP server crmd sends through: it keeps each message and its envelope."""

    port: int = 0
    envelopes: dict[str, str] = field(default_factory=dict)
    messages: dict[str, EmailMessage] = field(default_factory=dict)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        parsed = email.message_from_bytes(envelope.original_content or b"", policy=default)
        for recipient in envelope.rcpt_tos:
            self.envelopes[recipient] = str(envelope.mail_from)
            self.messages[recipient] = parsed  # type: ignore[assignment]
        return "250 queued"


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    loop = asyncio.get_running_loop()
    box = Mailbox()
    server = await loop.create_server(
        lambda: SMTP(box, hostname="mx.test", loop=loop), "127.0.0.1", 0
    )
    box.port = server.sockets[0].getsockname()[1]
    yield box
    server.close()


async def mail(port: int, raw: bytes, to: str) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
    await client.connect()
    try:
        await client.sendmail("", [to], raw)
    finally:
        client.close()


async def until(check: Any, timeout: float = 30) -> Any:
    async with asyncio.timeout(timeout):
        while not (found := await check()):
            await asyncio.sleep(0.1)
    return found


async def test_bounced_complained_opened_and_clicked_show_on_the_campaign(
    services: Urls, mailbox: Mailbox, browser: Browser, request: pytest.FixtureRequest
):
    listener = free_port()
    smtp = {"host": "127.0.0.1", "port": mailbox.port, "from": SENDER, "tls": "none", "rate": 500}
    async with (
        running_crmd(
            services,
            {"smtp": smtp},
            bounces={"host": "127.0.0.1", "port": listener},
            campaigns={"track_opens": True, "clock_interval_seconds": 1},
        ) as server,
        await signed_in(server.url) as client,
    ):
        rows = "".join(f"K{i},Person{i},p{i}@x.io,100\n" for i in range(5))
        await load_customers(client, "customer_external_id,name,email,spend\n" + rows)
        made = await client.post(
            "/api/v1/campaigns",
            json={
                "name": "Sale",
                "subject": "The sale, {first_name|you}",
                "message": "Hi {first_name|there}, the sale: https://shop.example/sale",
                "html": HTML,
                "rule": "spend > 50",
                "vendor": "smtp",
            },
        )
        assert made.status == 201, await made.text()
        campaign = (await made.json())["id"]
        await wait_for_campaign(client, campaign, "completed")
        assert sorted(mailbox.messages) == [f"p{i}@x.io" for i in range(5)]
        db = server.crmd.db

        # p1's mail bounces, p2 calls it spam: each report mailed to its envelope sender.
        def header(to: str) -> str:
            return str(mailbox.messages[to]["Message-ID"])

        bounce = samples.postfix_dsn(mailbox.envelopes["p1@x.io"], header("p1@x.io"))
        await mail(listener, bounce, mailbox.envelopes["p1@x.io"])
        complaint = samples.arf_report(mailbox.envelopes["p2@x.io"], header("p2@x.io"), "p2@x.io")
        await mail(listener, complaint, mailbox.envelopes["p2@x.io"])

        # p3 reads the message in a browser, images on, and follows its link.
        page = await watched(browser, server.url, folder_for(request))
        followed: list[str] = []

        async def shop(route: Route) -> None:
            followed.append(route.request.url)
            await route.fulfill(status=200, content_type="text/html", body="<h1>The sale</h1>")

        await page.page.route("https://shop.example/**", shop)
        body = mailbox.messages["p3@x.io"].get_body(("html",))
        assert body is not None
        received = body.get_content()
        assert "https://shop.example" not in received and f"{server.url}/o/" in received
        pixel = f"{server.url}/o/"
        async with page.page.expect_request_finished(lambda r: r.url.startswith(pixel)):
            await page.page.set_content(received)
        await page.page.locator("#sale").click()
        await page.page.wait_for_url("https://shop.example/sale")
        assert followed == ["https://shop.example/sale"]

        async def everything_seen() -> dict[str, dict[str, Any]] | None:
            logs = {d["recipient"]: d async for d in db.communication_log.find({})}
            statuses = {to: logs[to]["status"] for to in ("p1@x.io", "p2@x.io", "p3@x.io")}
            wanted = {"p1@x.io": "BOUNCED", "p2@x.io": "COMPLAINED", "p3@x.io": "CLICKED"}
            return logs if statuses == wanted and logs["p3@x.io"].get("opens") else None

        logs = await until(everything_seen)
        assert logs["p3@x.io"]["clicks"] == {"0": 1}
        assert {logs[to]["status"] for to in ("p0@x.io", "p4@x.io")} == {"SENT"}
        listed = {d["email"]: d async for d in db.suppressions.find({})}
        assert sorted(listed) == ["p1@x.io", "p2@x.io"]
        assert listed["p2@x.io"]["source"] == "complaint"
        assert listed["p1@x.io"]["source"] == "bounce"

        # The campaign's stats count each of them, once recounted after the batches.
        async def counted() -> dict[str, Any] | None:
            answer = await (await client.get(f"/api/v1/campaigns/{campaign}")).json()
            got = answer["stats"]
            return (
                answer if got["clicked"] and got["complained"] and got["bounced"]["hard"] else None
            )

        answer = await until(counted)
        got = answer["stats"]
        assert got["bounced"] == {"hard": 1, "soft": 0} and got["complained"] == 1
        assert (got["opened"]["people"], got["clicked"], got["clicks"]) == (1, 1, 1)
        assert answer["links"] == [
            {"url": "https://shop.example/sale", "index": 0, "unique": 1, "total": 1, "share": 1.0}
        ]
        # ... and its page shows them, with the link's clicks.
        await page.sign_in(TEST_EMAIL)
        await page.go(f"/campaigns/{campaign}")
        done = page.page.get_by_role("region", name="What the messages did")
        for key, shown in (("bouncedHard", "1"), ("complained", "1"), ("clicked", "1")):
            await expect(done.locator(f'[data-figure="{key}"]')).to_have_text(shown)
        links = page.page.get_by_role("region", name="Links").locator("tbody tr td")
        await expect(links).to_have_text(["https://shop.example/sale", "1", "1", "100.0%"])
        await page.shot("campaign")
        assert page.unexpected() == []
