"""The Webhooks pages in the browser: an operator adds a webhook to a real local
endpoint, sees its secret once, sends a test and reads the endpoint's answer, and the
delivery log; a bad address is refused with the reason; the pages fit a phone and work
with no script at all."""

from __future__ import annotations

import json
from typing import Any

from playwright.async_api import Browser, expect

from crmd.app import Crmd
from tests.console.conftest import Watched, folder_for, watched
from tests.webhooks.conftest import Endpoint, endpoint, expected_signature

__all__ = ["endpoint"]  # the fixture, used below by name


async def add_webhook(page: Watched, url: str, *events: str) -> None:
    p = page.page
    await page.nav("Webhooks")
    await p.get_by_label("URL", exact=True).fill(url)
    for event in events:
        await p.get_by_role("checkbox", name=event).check()
    await p.get_by_label("Description").fill("our ticketing system")
    await p.get_by_role("button", name="Add webhook", exact=True).click()


async def test_an_operator_adds_a_webhook_sees_its_secret_once_and_tests_it(
    page: Watched, endpoint: Endpoint, system: Crmd
):
    p = page.page
    await page.sign_in("ops@example.com")
    await page.nav("Webhooks")
    await expect(p.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    await expect(p.get_by_text("No webhook yet.")).to_be_visible()
    await page.shot("empty")
    await add_webhook(page, endpoint.at("/console"), "message.outcome", "import.done")
    await expect(p.get_by_role("status").first).to_have_text("The webhook is made.")
    secret = (await p.locator("#secret").text_content() or "").strip()
    assert secret.startswith("whsec_") and len(secret) > 40
    await expect(p.get_by_text("import.done: an upload finished")).to_be_visible()
    await page.shot("created")
    hook_page = p.url
    await p.reload()
    await expect(p.locator("#secret")).to_have_count(0)  # shown once only

    endpoint.answers.append((200, '{"ok": true, "seen": "the test"}'))
    await p.get_by_role("button", name="Send test", exact=True).click()
    await expect(p.get_by_role("heading", name="The endpoint took the test")).to_be_visible()
    await expect(p.get_by_text("It answered HTTP 200")).to_be_visible()
    await expect(p.get_by_text('{"ok": true, "seen": "the test"}')).to_be_visible()
    [got] = endpoint.to("/console")
    assert json.loads(got.body)["type"] == "webhook.test"
    assert got.headers["webhook-signature"] == expected_signature(secret, got.headers, got.body)
    row = p.get_by_role("row").filter(has_text="webhook.test")
    await expect(row).to_contain_text("delivered")
    await expect(row).to_contain_text("HTTP 200")
    await page.shot("tested")

    endpoint.answers.append((500, "the database is down"))
    await p.get_by_role("button", name="Send test", exact=True).click()
    await expect(p.get_by_role("heading", name="The test was not taken")).to_be_visible()
    await expect(p.get_by_text("It answered HTTP 500")).to_be_visible()
    await expect(p.get_by_text("the database is down")).to_be_visible()
    await expect(p.get_by_role("row").filter(has_text="HTTP 500")).to_contain_text("failed")

    await p.set_viewport_size({"width": 390, "height": 844})
    assert await p.evaluate("document.documentElement.scrollWidth") <= 390
    await page.shot("phone-webhook")
    await page.go("/webhooks")  # (the menu folds away on a phone)
    assert await p.evaluate("document.documentElement.scrollWidth") <= 390
    await page.shot("phone-list")
    await p.set_viewport_size({"width": 1280, "height": 900})
    row = p.get_by_role("row").filter(has_text=endpoint.at("/console"))
    await expect(row).to_contain_text("import.done, message.outcome")
    await expect(row).to_contain_text("our ticketing system")
    await page.shot("list")

    await p.goto(hook_page)
    await p.get_by_role("button", name="Turn off", exact=True).click()
    await expect(p.get_by_role("status").first).to_have_text(
        "The webhook is off: nothing is sent to it."
    )
    await p.get_by_role("button", name="Delete webhook", exact=True).click()
    await expect(p.get_by_text("No webhook yet.")).to_be_visible()


async def test_a_bad_address_is_refused_with_its_reason(page: Watched):
    p = page.page
    await page.sign_in("ops@example.com")
    await add_webhook(page, "https://user:pw@example.com/hook", "import.done")
    await expect(p.get_by_role("alert")).to_have_text("url may not carry a user name or password")
    await page.nav("Webhooks")
    await p.get_by_label("URL", exact=True).fill("https://example.com/hook")
    await p.get_by_role("button", name="Add webhook", exact=True).click()
    await expect(p.get_by_role("alert")).to_have_text("Choose at least one event to send.")


async def test_the_pages_work_with_no_script(
    browser: Browser, served: str, request: Any, endpoint: Endpoint
):
    page = await watched(browser, served, folder_for(request), java_script_enabled=False)
    try:
        p = page.page
        await page.sign_in("ops@example.com")
        await add_webhook(page, endpoint.at("/noscript"), "customer.unsubscribed")
        await expect(p.locator("#secret")).to_contain_text("whsec_")
        await p.get_by_role("button", name="Send test", exact=True).click()
        await expect(p.get_by_text("It answered HTTP 204")).to_be_visible()
        assert len(endpoint.to("/noscript")) == 1
        await page.shot("no-script")
    finally:
        await page.page.context.close()
    assert not page.unexpected(), page.unexpected()
