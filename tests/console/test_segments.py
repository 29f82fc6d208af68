"""Saved segments in the browser: an operator renames one and changes its rule (counted
again, a mistake marked where it is), then deletes it."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from crmd.app import Crmd
from tests.console.conftest import Watched
from tests.console.seed import seed


async def test_an_operator_edits_and_deletes_a_segment(page: Watched, client: Any, system: Crmd):
    page.allowed.append(r"status of 422 \(")  # the rule with a mistake, on purpose
    seeded = await seed(client, "seg@example.com", "Seg", send=False)
    p = page.page
    await page.sign_in("seg@example.com")
    await page.nav("Segments")
    await p.get_by_role("link", name="Edit Seg segment").click()
    await p.wait_for_url(page.base + f"/segments/{seeded.segment_id}")
    await expect(p.get_by_role("heading", name="Seg segment", exact=True)).to_be_visible()
    await expect(p.get_by_label("Rule", exact=True)).to_have_value("spend > 0")

    await p.get_by_label("Rule", exact=True).fill("spend >> 1")
    await p.get_by_role("button", name="Save changes").click()
    await expect(p.locator("#rule-error")).to_contain_text("At column")
    await page.shot("mistake")
    stored = await system.db.segments.find_one({"name": "Seg segment"})
    assert stored is not None and stored["rule"] == "spend > 0"  # nothing written

    await p.get_by_label("Name", exact=True).fill("Top two")
    await p.get_by_label("Rule", exact=True).fill("spend > 1500")
    await p.get_by_role("button", name="Save changes").click()
    await p.wait_for_url(page.base + "/segments")
    await expect(p.get_by_role("status")).to_have_text("Saved Top two: 2 customers.")
    row = p.get_by_role("row").filter(has_text="Top two")
    await expect(row).to_contain_text("spend > 1500")
    await expect(row.get_by_role("cell").nth(2)).to_have_text("2")
    await page.shot("changed")

    await row.get_by_role("button", name="Delete Top two").click()
    await expect(p.get_by_role("status")).to_have_text("Deleted Top two.")
    await expect(p.get_by_role("row").filter(has_text="Top two")).to_have_count(0)
    assert await system.db.segments.count_documents({}) == 0
    await page.go("/")
    await page.go(f"/segments/{seeded.segment_id}")
    page.allowed.append(r"status of 404 \(")
    await expect(p.get_by_role("heading", name="Not found")).to_be_visible()
