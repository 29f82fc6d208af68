"""The API reference at /reference: rendered by crmd from its OpenAPI document, readable
without signing in, with no script of anyone else's."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.console.conftest import Watched


async def test_a_person_reads_the_reference_without_signing_in(page: Watched, client: Any):
    document = await (await client.get("/api/v1/openapi.json")).json()
    p = page.page
    scripts: list[str] = []
    p.on("request", lambda r: r.resource_type == "script" and scripts.append(r.url))
    await page.go("/reference")
    await expect(p.get_by_role("heading", name="crmd API reference", exact=False)).to_be_visible()
    operations = p.locator("article.operation")
    count = sum(1 for item in document["paths"].values() for _ in item)
    await expect(operations).to_have_count(count)

    created = p.locator("#create_segment")
    await expect(created).to_contain_text("POST")
    await expect(created).to_contain_text("/api/v1/segments")
    await expect(created.get_by_role("row").filter(has_text="201")).to_contain_text("Segment")
    await page.shot("reference")
    await created.screenshot(path=str(page.folder / "operation.png"))
    await p.locator("#tag-campaigns").screenshot(path=str(page.folder / "campaigns.png"))

    original = p.locator("#original_post_segment")
    await expect(original).to_contain_text("deprecated")
    await expect(original).to_contain_text("use POST /api/v1/segments")
    await expect(p.locator("#vendor_receipt")).to_contain_text("vendor's signature")
    await expect(p.locator("#upload").get_by_role("row").filter(has_text="kind")).to_contain_text(
        "string one of customers, orders"
    )

    await original.get_by_role("link", name="crmd's own route").click()
    await expect(p).to_have_url(page.base + "/reference#create_segment")
    await created.get_by_role("row").filter(has_text="201").get_by_role("link").first.click()
    await expect(p).to_have_url(page.base + "/reference#schema-Segment")
    schema = p.locator("#schema-Segment")
    await expect(schema.get_by_role("row").filter(has_text="audienceSize")).to_contain_text(
        "integer"
    )
    await schema.screenshot(path=str(page.folder / "schema.png"))
    logs = p.locator("#campaign_logs").get_by_role("row").filter(has_text="limit")
    await expect(logs).to_contain_text("≤ 500")
    assert scripts and all(url.startswith(page.base) for url in scripts), scripts


async def test_the_reference_says_each_heading_and_the_shared_errors_once(client: Any):
    html = await (await client.get("/reference")).text()
    for level in ("h2", "h3"):
        headings = [
            re.sub(r"<[^>]+>|\s+", " ", h).strip()
            for h in re.findall(rf"<{level}[^>]*>(.*?)</{level}>", html, re.S)
        ]
        repeated = {h for h in headings if headings.count(h) > 1}
        assert not repeated, (level, repeated)
    assert html.count("<caption>Errors any route may answer</caption>") == 1
    shared = re.search(r"<caption>Errors any route may answer</caption>(.*?)</table>", html, re.S)
    assert shared is not None
    rows = re.findall(r"<tr><td>([0-9]{3})</td><td>([^<]*)</td>", shared.group(1))
    assert rows, "the shared table lists the errors"
    for status, meaning in rows:  # each is said there, and nowhere else
        assert html.count(f"<tr><td>{status}</td><td>{meaning}</td>") == 1, (status, meaning)
