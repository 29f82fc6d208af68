"""Every form works with JavaScript off: plain POSTs and redirects after them. The
operator signs in, uploads, counts a rule, asks for a rule from words, saves a segment,
previews a message and asks for suggestions, saves a draft, sends it, and pauses and
cancels a campaign, in a browser that runs no script at all."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from crmd.app import Crmd
from tests.console.conftest import Watched, folder_for, watched
from tests.console.test_journey import CUSTOMERS, csv_file


@pytest.fixture
async def scriptless(
    browser: Browser, served: str, request: pytest.FixtureRequest
) -> AsyncIterator[Watched]:
    seen = await watched(browser, served, folder_for(request), java_script_enabled=False)
    yield seen
    await seen.shot("last")
    await seen.page.context.close()
    assert not seen.unexpected(), seen.unexpected()


@pytest.fixture
def vendor_settings() -> dict[str, object]:
    """Slow enough to pause and cancel a campaign before it is done."""
    return {"delay_min": 0.2, "delay_max": 0.5, "seed": 3, "failure_rate": 0.0}


async def until_shown(page: Watched, locator: str, text: str, seconds: float = 30) -> None:
    """Reload (as the page's own refresh does, with no script) until ``text`` shows."""
    async with asyncio.timeout(seconds):
        while text not in await page.page.locator(locator).inner_text():
            await asyncio.sleep(0.5)
            await page.page.reload()


async def test_every_form_works_without_javascript(scriptless: Watched, system: Crmd):
    page = scriptless
    page.allowed.append(r"status of 4[0-9]{2} \(")
    p = page.page
    await page.sign_in("plain@example.com")

    await page.nav("Imports")
    await p.get_by_label("CSV file", exact=True).set_input_files(csv_file("c.csv", CUSTOMERS))
    await p.get_by_role("button", name="Upload", exact=True).click()
    await p.wait_for_url(re.compile(r".*/imports/[0-9a-f]{24}"))
    assert await p.locator('meta[http-equiv="refresh"]').count() in (0, 1)
    await until_shown(page, ".lede .status", "done")
    await expect(p.locator('[data-figure="persisted"]')).to_have_text("40")
    await page.shot("import-done")

    await page.nav("Segments")
    await p.get_by_label("Describe in words", exact=True).fill("customers in Delhi")
    await p.get_by_role("button", name="Suggest rule").click()
    await expect(p.get_by_label("Rule", exact=True)).not_to_have_value("")
    await expect(p.locator("[data-suggest-result]")).to_contain_text("Suggested by")
    await p.get_by_label("Rule", exact=True).fill("spend >= 15000")
    await p.get_by_role("button", name="Count", exact=True).click()
    await expect(p.locator("[data-audience-size]")).to_have_attribute("data-audience-size", "11")
    await expect(p.get_by_label("Rule", exact=True)).to_have_value("spend >= 15000")
    await page.shot("counted")
    await p.get_by_label("Name", exact=True).fill("Top")
    await p.get_by_role("button", name="Save segment").click()
    await expect(p.get_by_role("status")).to_contain_text("Saved Top: 11 customers")

    await p.get_by_role("link", name="New campaign to Top").click()
    await expect(p.get_by_label("Segment", exact=True)).to_have_value(re.compile("[0-9a-f]{24}"))
    await p.get_by_label("Name", exact=True).fill("Plain")
    await p.get_by_label("Message", exact=True).fill("Dear {name}, thanks!")
    await p.get_by_role("button", name="Preview", exact=True).click()
    previews = p.get_by_role("region", name="Preview").locator(".preview")
    await expect(previews).to_have_count(3)
    await expect(previews.first).to_contain_text("Dear Customer 40, thanks!")
    await p.get_by_role("button", name="Suggest messages").click()
    await expect(p.locator("[data-messages-result] .preview").first).to_be_visible()
    await expect(p.get_by_label("Message", exact=True)).to_have_value("Dear {name}, thanks!")
    await page.shot("previewed")
    await p.get_by_role("button", name="Save as draft").click()
    await expect(p.locator(".lede .status")).to_have_text("draft")
    await p.get_by_role("button", name="Send now").click()
    await expect(p.get_by_role("button", name="Pause")).to_be_visible()
    await p.get_by_role("button", name="Pause").click()
    # Paused, or already handed over (a small audience goes fast): either is said.
    said = p.get_by_role("status").or_(p.get_by_role("alert"))
    await expect(said).to_have_text(
        re.compile("Paused|cannot pause: the campaign is (sent|completed)")
    )
    await page.shot("paused")
    if await p.get_by_role("button", name="Cancel").count():
        await p.get_by_role("button", name="Cancel").click()
        await expect(p.locator(".lede .status")).to_have_text(re.compile("cancel|completed"))
    campaign = await system.db.campaigns.find_one({"name": "Plain"})
    assert campaign is not None and campaign["audienceSize"] == 11
    await p.get_by_role("button", name="Sign out").click()
    await expect(p.get_by_label("Email", exact=True)).to_be_visible()
