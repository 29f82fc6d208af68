"""The suppression list in the browser: an operator adds an address, finds it and takes it
off again; a recipient follows the link in their message, confirms with one button, and
the operator sees them on the list."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from crmd.app import Crmd
from tests.console.conftest import Watched
from tests.console.seed import seed


async def test_an_operator_adds_finds_and_removes_an_address(page: Watched):
    p = page.page
    await page.sign_in("ops@example.com")
    await page.nav("Suppressions")
    await expect(p.get_by_role("heading", name="Suppressions", exact=True)).to_be_visible()
    await expect(p.get_by_text("No address is suppressed.")).to_be_visible()
    await p.get_by_label("Email", exact=True).fill("Gone@Example.com")
    await p.get_by_label("Reason", exact=True).fill("asked by phone")
    await p.get_by_role("button", name="Suppress", exact=True).click()
    await expect(p.get_by_role("status")).to_have_text("gone@example.com is suppressed.")
    row = p.get_by_role("row").filter(has_text="gone@example.com")
    await expect(row).to_contain_text("operator")
    await expect(row).to_contain_text("asked by phone")
    await page.shot("added")

    await p.get_by_label("Address", exact=True).fill("GONE@example.com")
    await p.get_by_role("button", name="Find", exact=True).click()
    await expect(p.get_by_role("row")).to_have_count(2)  # the header and the one found
    await p.get_by_label("Address", exact=True).fill("other@example.com")
    await p.get_by_role("button", name="Find", exact=True).click()
    await expect(p.get_by_text("No such address on the list.")).to_be_visible()
    await page.shot("not-found")

    await page.nav("Suppressions")
    await p.get_by_role("button", name="Remove gone@example.com", exact=True).click()
    await expect(p.get_by_role("status")).to_have_text(
        "gone@example.com may be sent campaigns again."
    )
    await expect(p.get_by_text("No address is suppressed.")).to_be_visible()
    await p.get_by_label("Email", exact=True).fill("bad address@example.com")
    await p.get_by_label("Email", exact=True).evaluate("e => e.type = 'text'")  # past the browser
    await p.get_by_role("button", name="Suppress", exact=True).click()
    await expect(p.get_by_role("alert")).to_have_text("Give an email address to suppress.")


async def test_a_recipient_unsubscribes_from_the_link_in_their_message(
    page: Watched, second_page: Watched, client: Any, system: Crmd
):
    seeded = await seed(client, "ops@example.com", "Delta")
    log = await system.db.communication_log.find_one(
        {"campaignId": seeded.campaign_id, "recipient": "delta2@example.com"}
    )
    found = re.search(r"Unsubscribe: (\S+)$", log["message"])
    assert found, log["message"]
    link = found[1]
    assert link.startswith(second_page.base + "/u/")

    recipient = second_page  # not signed in: a stranger to the console
    await recipient.page.goto(link)
    await expect(recipient.page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    await expect(recipient.page.get_by_text("d•••@example.com")).to_be_visible()
    await expect(recipient.page.get_by_role("navigation", name="Main")).to_have_count(0)
    await recipient.shot("confirm")
    await recipient.page.get_by_role("button", name="Unsubscribe", exact=True).click()
    await expect(recipient.page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    await recipient.shot("unsubscribed")

    await page.sign_in("ops@example.com")
    await page.nav("Suppressions")
    row = page.page.get_by_role("row").filter(has_text="delta2@example.com")
    await expect(row).to_contain_text("unsubscribe")
    await expect(row.get_by_role("link", name="campaign")).to_have_attribute(
        "href", f"/campaigns/{seeded.campaign_id}"
    )
    await page.shot("listed")
