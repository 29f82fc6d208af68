"""A new operator does the whole job in the browser, by the names a person (or a screen
reader) sees: sign in, import customers (with bad rows) and orders, watch the import
finish, write a rule and see its count, save a segment, create a campaign with a
preview, send it, and watch it complete, with the figures the API gives."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import expect

from crmd.app import Crmd
from tests.campaigns.conftest import placed
from tests.console.conftest import Watched
from tests.receipts.test_receipts_api import settled

CUSTOMERS = "customer_external_id,name,email,phone,location,spend,visits\n" + "".join(
    f"C{i},Customer {i},c{i}@example.com,,{'Delhi' if i % 2 else 'Pune'},{i * 500},{i % 5}\n"
    for i in range(1, 41)
)
BAD_ROWS = "B1,Bad Email,not-an-email,,Pune,10,1\nB2,Bad Spend,b2@example.com,,Pune,lots,1\n"
SCRIPTED_NAME = "C41,<script>alert('x')</script>,x@example.com,,Delhi,99999,1\n"
ORDERS = (
    "order_external_id,customer_external_id,amount,items,orderDate\n"
    'O1,C1,500,"shoe,sock",2024-05-02\n'
    "O2,C40,250,hat,2024-06-01\n"
)


def csv_file(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


async def upload(page: Watched, kind: str, name: str, text: str) -> None:
    p = page.page
    await page.nav("Imports")
    await p.get_by_label("Kind", exact=True).select_option(kind)
    await p.get_by_label("CSV file", exact=True).set_input_files(csv_file(name, text))
    await p.get_by_role("button", name="Upload", exact=True).click()
    await p.wait_for_url(re.compile(r".*/imports/[0-9a-f]{24}(\?.*)?$"))
    # The page follows the import live and shows "done" when every row is stored.
    await expect(p.locator(".lede .status")).to_have_text("done", timeout=30_000)


async def figures(page: Watched) -> dict[str, int]:
    shown = {}
    for name in ("pending", "sent", "delivered", "failed", "cancelled", "unknown", "suppressed"):
        text = await page.page.locator(f'[data-figure="{name}"]').inner_text()
        shown[name] = int(text.replace(",", ""))
    return shown


async def test_a_new_operator_does_the_whole_job(page: Watched, client: Any, system: Crmd):
    p = page.page
    p.on("dialog", lambda dialog: page.problems.append(f"a dialog opened: {dialog.message}"))
    await page.sign_in("ops@example.com")
    await expect(p.get_by_role("heading", name="Dashboard")).to_be_visible()
    await page.shot("dashboard-empty")

    await upload(page, "customers", "customers.csv", CUSTOMERS + BAD_ROWS + SCRIPTED_NAME)
    assert await p.locator('[data-figure="valid"]').inner_text() == "41"
    assert await p.locator('[data-figure="rejected"]').inner_text() == "2"
    assert await p.locator('[data-figure="persisted"]').inner_text() == "41"
    errors = p.get_by_role("table")
    await expect(errors).to_contain_text("email 'not-an-email' is not an email address")
    await expect(errors.get_by_role("row").nth(1)).to_contain_text("42")  # its line
    await expect(p.get_by_role("link", name="Download errors.csv")).to_be_visible()
    await page.shot("import-done")

    await upload(page, "orders", "orders.csv", ORDERS)
    await page.nav("Customers")
    await expect(p.get_by_role("link", name="<script>alert('x')</script>")).to_be_visible()
    await page.shot("customers")
    await page.nav("Orders")
    await expect(p.get_by_role("cell", name="O2")).to_be_visible()
    await page.shot("orders")

    await page.nav("Segments")
    rule = p.get_by_label("Rule", exact=True)
    await rule.fill("spend > 10000 AND")
    result = p.locator("[data-rule-result]")
    await expect(result).to_contain_text("at column 18", timeout=5_000)
    await expect(result.locator("mark")).to_be_visible()
    await page.shot("rule-mistake")
    await rule.fill("spend > 10000")
    await expect(result.locator("[data-audience-size]")).to_have_attribute(
        "data-audience-size", "21", timeout=5_000
    )  # C21..C40 and C41
    await p.get_by_label("Name", exact=True).fill("Big spenders")
    await page.shot("rule-counted")
    await p.get_by_role("button", name="Save segment").click()
    await expect(p.get_by_role("status")).to_contain_text("Saved Big spenders: 21 customers")
    await expect(p.get_by_role("cell", name="Big spenders", exact=True)).to_be_visible()

    await page.nav("Campaigns")
    await p.get_by_role("link", name="New campaign").click()
    await p.get_by_label("Name", exact=True).fill("Festive")
    await p.get_by_label("Segment", exact=True).select_option(label="Big spenders (21)")
    await p.get_by_label("Message", exact=True).fill("Hi {first_name|there}, 20% off for you!")
    preview = p.get_by_role("region", name="Preview")
    await expect(preview.locator(".preview")).to_have_count(3, timeout=5_000)
    await expect(preview).to_contain_text("Hi Customer, 20% off for you!")
    await page.shot("new-campaign")
    await p.get_by_role("button", name="Send now").click()
    # Asked first, with the audience's size; the form is kept as it was.
    await expect(p.get_by_role("heading", name="Send Festive now?")).to_be_visible()
    await expect(p.get_by_label("Message", exact=True)).to_have_value(
        "Hi {first_name|there}, 20% off for you!"
    )
    await page.shot("send-now-asks")
    await p.get_by_role("button", name="Send to 21 customers").click()
    await p.wait_for_url(re.compile(r".*/campaigns/[0-9a-f]{24}(\?.*)?$"))
    campaign_id = p.url.split("?")[0].rsplit("/", 1)[1]
    await page.shot("campaign-sending")
    await expect(p.locator(".lede .status")).to_have_text("completed", timeout=60_000)

    # Every receipt in, the page's figures (live) are the API's.
    token = (
        await (
            await client.post("/api/v1/user/dev-login", json={"email": "ops@example.com"})
        ).json()
    )["token"]
    async with asyncio.timeout(30):
        while received(system) < 21:
            await asyncio.sleep(0.2)
        await settled(system)
        while True:
            api = await (
                await client.get(
                    f"/api/v1/campaigns/{campaign_id}",
                    headers={"Authorization": f"Bearer {token}"},
                )
            ).json()
            if await figures(page) == placed(api["stats"]) and api["stats"]["pending"] == 0:
                break
            await asyncio.sleep(0.3)
    shown = await figures(page)
    assert shown["sent"] + shown["failed"] == 21 and shown["failed"] > 0
    await expect(p.locator("svg.chart")).to_have_attribute("aria-label", re.compile("of 21"))
    await page.shot("campaign-completed")

    await page.nav("Dashboard")
    await expect(p.get_by_test_id("customers")).to_have_text("41")
    await expect(p.get_by_test_id("orders")).to_have_text("2")
    await expect(p.get_by_test_id("campaigns")).to_have_text("1")
    await expect(p.get_by_test_id("messages")).to_have_text("21")
    await page.shot("dashboard")


def received(system: Crmd) -> float:
    """The receipts crmd has accepted from the dummy vendor."""
    sample = system.metrics.registry.get_sample_value(
        "crmd_receipts_total", {"vendor": "dummy_vendor", "outcome": "accepted"}
    )
    return sample or 0.0
