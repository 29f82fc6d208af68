"""A customer's data rights in the browser: the operator downloads the customer's data
from their page, is stopped when the address typed to confirm the erasure is not
theirs, then erases them and is told what was done; the suppression list shows the
erased address as a hash only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from crmd.app import Crmd
from tests.console.conftest import Watched
from tests.console.seed import seed


async def test_an_operator_exports_then_erases_a_customer(page: Watched, client: Any, system: Crmd):
    seeded = await seed(client, "ops@example.com", "Echo")
    p = page.page
    await page.sign_in("ops@example.com")
    await page.go(f"/customers/{seeded.customer_id}")
    await expect(p.get_by_role("heading", name="Echo Person 1", exact=True)).to_be_visible()

    async with p.expect_download() as downloading:
        await p.get_by_role("link", name="Export data", exact=True).click()
    download = await downloading.value
    assert download.suggested_filename == f"customer-{seeded.customer_id}.json"
    exported = json.loads(Path(await download.path()).read_text())
    assert exported["format"] == "crmd.customer-export/1"
    assert exported["customer"]["email"] == "echo1@example.com"
    assert [o["order_external_id"] for o in exported["orders"]] == ["Echo-O1"]
    assert [m["recipient"] for m in exported["messages"]] == ["echo1@example.com"]
    await page.shot("customer")

    confirm = p.get_by_label(re.compile(r"^Type their address \(echo1@example\.com\)"))
    await confirm.fill("echo2@example.com")
    await p.get_by_role("button", name="Erase this customer", exact=True).click()
    await expect(p.get_by_role("alert")).to_have_text("Type the customer's address to confirm.")
    assert await system.db.customers.count_documents({"_id": seeded.customer_id}) == 1
    await page.shot("not-confirmed")

    await confirm.fill("Echo1@Example.com")
    await p.get_by_role("button", name="Erase this customer", exact=True).click()
    await expect(p).to_have_url(re.compile(r"/customers$"))
    await expect(p.get_by_role("status")).to_have_text(
        "Customer erased: 0 events deleted, 1 messages and 1 orders kept without their "
        "name or address; the address stays on the suppression list only as a hash."
    )
    await expect(p.get_by_text("Echo Person 2")).to_be_visible()
    await expect(p.get_by_text("Echo Person 1")).to_have_count(0)
    assert await system.db.customers.count_documents({"_id": seeded.customer_id}) == 0
    await page.shot("erased")

    await page.nav("Suppressions")
    row = p.get_by_role("row").filter(has_text="erased customer")
    await expect(row).to_contain_text("erasure")
    await expect(row).to_contain_text("Stays for good")
    await expect(row.get_by_role("button")).to_have_count(0)
    assert "echo1@example.com" not in await p.content()
    await page.shot("suppressions")
