"""Every page's mistakes, as an operator meets them in the browser: each says what is
wrong and where (the column marked), keeps what was typed, and stores nothing."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from crmd.app import Crmd
from tests.console.conftest import Watched
from tests.console.seed import seed

REFUSED = r"status of 4[0-9]{2} \("  # the browser's own line for a page answered 4xx


async def test_a_bad_file_is_refused_with_its_reason_and_nothing_is_stored(
    page: Watched, system: Crmd
):
    page.allowed.append(REFUSED)
    p = page.page
    await page.sign_in("ops@example.com")
    await page.nav("Imports")
    await p.get_by_label("Kind", exact=True).select_option("orders")
    await p.get_by_label("CSV file", exact=True).set_input_files(
        {"name": "x.csv", "mimeType": "text/csv", "buffer": b"name,email\nA,a@example.com\n"}
    )
    await p.get_by_role("button", name="Upload", exact=True).click()
    problem = p.get_by_role("alert")
    await expect(problem).to_contain_text("customer_external_id or customerEmail")
    await page.shot("missing-columns")
    # A column mapping that is not JSON.
    await p.get_by_label("Kind", exact=True).select_option("customers")
    await p.get_by_label("Column mapping", exact=True).fill("{spend: Total")
    await p.get_by_label("CSV file", exact=True).set_input_files(
        {"name": "y.csv", "mimeType": "text/csv", "buffer": b"customer_external_id,name\nC1,A\n"}
    )
    await p.get_by_role("button", name="Upload", exact=True).click()
    await expect(problem).to_contain_text("mapping")
    await page.shot("bad-mapping")
    assert await system.db.uploads.count_documents({}) == 0
    assert await system.db.customers.count_documents({}) == 0


async def test_a_rule_filter_with_a_mistake_marks_its_column(page: Watched, client: Any):
    page.allowed.append(REFUSED)
    await seed(client, "ops@example.com", "Ops", send=False)
    p = page.page
    await page.sign_in("ops@example.com")
    await page.nav("Customers")
    await p.get_by_label("Rule filter", exact=True).fill("spend > 100 AND locaton = 'Delhi'")
    await p.get_by_role("button", name="Filter").click()
    problem = p.get_by_role("alert")
    await expect(problem).to_contain_text("At column 17")
    await expect(problem.locator("mark")).to_have_text("l")
    await expect(p.get_by_role("table")).to_have_count(0)
    await expect(p.get_by_label("Rule filter", exact=True)).to_have_value(
        "spend > 100 AND locaton = 'Delhi'"
    )
    await page.shot("rule-filter-mistake")
    await p.get_by_label("Rule filter", exact=True).fill("spend >= 2000")
    await p.get_by_role("button", name="Filter").click()
    await expect(p.get_by_role("table").get_by_role("link")).to_have_text(
        ["Ops Person 3", "Ops Person 2"]
    )


async def test_a_campaign_form_says_each_mistake_and_stores_nothing(
    page: Watched, client: Any, system: Crmd
):
    page.allowed.append(REFUSED)
    await seed(client, "ops@example.com", "Ops", send=False)
    p = page.page
    await page.sign_in("ops@example.com")
    await page.go("/campaigns/new")
    name = p.get_by_label("Name", exact=True)
    message = p.get_by_label("Message", exact=True)

    # As it is typed, the preview says where the template is wrong.
    await p.get_by_label("Rule", exact=True).fill("spend > 0")
    await message.fill("Hi {name, welcome")
    preview = p.get_by_role("region", name="Preview")
    await expect(preview.get_by_role("alert")).to_contain_text("column", timeout=5_000)
    await page.shot("template-as-typed")

    # Sent anyway: the page comes back with the column marked and the fields kept.
    await name.fill("Broken template")
    await p.get_by_role("button", name="Send now").click()
    await expect(p.locator("#template-error")).to_contain_text("At column 4")
    await expect(p.locator("#template-error mark")).to_have_text("{")
    await expect(name).to_have_value("Broken template")
    await page.shot("template-error")

    # No audience at all.
    await message.fill("Hi {name}")
    await p.get_by_label("Rule", exact=True).fill("")
    await p.get_by_role("button", name="Save as draft").click()
    await expect(p.get_by_role("alert").first).to_contain_text(re.compile("segment|rule"))
    await page.shot("no-audience")

    # A rule with a mistake.
    await p.get_by_label("Rule", exact=True).fill("spend >> 3")
    await p.get_by_role("button", name="Save as draft").click()
    await expect(p.locator("#problem, .problem").first).to_contain_text("column")
    await expect(p.get_by_role("alert").locator("mark")).to_be_visible()

    # Scheduled in the past, and with no time at all.
    await p.get_by_label("Rule", exact=True).fill("spend > 0")
    await p.get_by_label("Send at", exact=True).fill("2020-01-01T10:00")
    await p.get_by_role("button", name="Schedule").click()
    await expect(p.get_by_role("alert").first).to_contain_text("choose a time in the future")
    await p.get_by_label("Send at", exact=True).fill("")
    await p.get_by_role("button", name="Schedule").click()
    await expect(p.get_by_role("alert").first).to_contain_text("give the date and time")
    await page.shot("schedule-in-the-past")

    assert await system.db.campaigns.count_documents({"name": {"$ne": "Ops campaign"}}) == 0


async def test_a_segment_that_cannot_be_saved_says_why(page: Watched, system: Crmd):
    page.allowed.append(REFUSED)
    p = page.page
    await page.sign_in("ops@example.com")
    await page.nav("Segments")
    await p.get_by_label("Name", exact=True).fill("Typo")
    await p.get_by_label("Rule", exact=True).fill('location = "Delhi" OR')
    await p.get_by_role("button", name="Save segment").click()
    problem = p.locator("#rule-error")
    await expect(problem).to_contain_text("At column 22")
    await expect(p.get_by_label("Name", exact=True)).to_have_value("Typo")
    await page.shot("segment-error")
    assert await system.db.segments.count_documents({}) == 0


async def test_unknown_and_malformed_addresses_are_a_page_not_a_crash(page: Watched):
    page.allowed.append(REFUSED)
    p = page.page
    await page.sign_in("ops@example.com")
    for path in (
        "/customers/000000000000000000000000",
        "/imports/not-an-id",
        "/campaigns/000000000000000000000000",
        "/campaigns/%3Cscript%3E",
        "/no-such-page",
    ):
        answer = await p.goto(page.base + path)
        assert answer is not None and answer.status == 404, path
        await expect(p.get_by_role("heading", name="Not found")).to_be_visible()
        await expect(p.get_by_role("navigation", name="Main")).to_be_visible()
    answer = await p.goto(page.base + "/customers?before=abc")
    assert answer is not None and answer.status == 400
    await expect(p.get_by_role("alert")).to_contain_text("before must be a whole number")
    answer = await p.goto(page.base + "/campaigns/000000000000000000000000?status=NOPE")
    assert answer is not None and answer.status in (400, 404)
    await page.shot("not-found")


async def test_an_expired_form_is_refused_and_says_to_reload(page: Watched):
    """Signed out in another tab: the form still on screen no longer carries a valid
    token; submitting it changes nothing and says what to do."""
    page.allowed.append(REFUSED)
    p = page.page
    await page.sign_in("ops@example.com")
    await page.nav("Segments")
    # Signing out (in any tab) clears the session cookie the tabs share; that is done
    # here directly: a second tab, opened and closed, sometimes never came back from
    # Chromium and hung the suite (Playwright's new_page and close have no timeout).
    await p.context.clear_cookies()
    await p.get_by_label("Rule", exact=True).fill("spend > 1")
    await p.get_by_label("Name", exact=True).fill("Late")
    await p.get_by_role("button", name="Save segment").click()
    await expect(p.get_by_role("heading", name=re.compile("Sign in|Not allowed"))).to_be_visible()
    await page.shot("expired-form")
