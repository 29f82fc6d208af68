"""The API keys page in the browser: an owner makes a key, sees it once and copies it
with the button, a REST client uses it, and the owner revokes it (the client is refused
on its next request); a form sent twice makes one key; a viewer has no such page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from crmd.app import Crmd
from crmd.console.workspace import WORKSPACE_COOKIE
from crmd.workspaces.members import add_member
from tests.console.conftest import Watched, folder_for, watched


async def test_an_owner_makes_copies_and_revokes_a_key(page: Watched, client: Any, system: Crmd):
    p = page.page
    await p.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=page.base)
    await page.sign_in("owner@example.com")
    await page.nav("API keys")
    await expect(p.get_by_role("heading", name="API keys", exact=True)).to_be_visible()
    await expect(p.get_by_text("No key yet.")).to_be_visible()
    await page.shot("empty")
    await p.get_by_label("Name", exact=True).fill("warehouse sync")
    await p.get_by_role("checkbox", name="import").check()  # read is ticked already
    await p.get_by_label("Expires").fill("2027-06-30")
    await p.get_by_role("button", name="Make key", exact=True).click()
    await expect(p.get_by_role("heading", name="Your new key, warehouse sync")).to_be_visible()
    key = (await p.locator("#new-key").text_content() or "").strip()
    assert key.startswith("crmd_") and len(key) == 48
    await p.get_by_role("button", name="Copy key", exact=True).click()
    await expect(p.locator("#new-key-copied")).to_have_text("Copied.")
    assert await p.evaluate("navigator.clipboard.readText()") == key
    row = p.get_by_role("row").filter(has_text="warehouse sync")
    await expect(row).to_contain_text(key[:12] + "…")
    await expect(row).to_contain_text("read, import")
    await expect(row).to_contain_text("2027-06-30 23:59 UTC")
    await expect(row).to_contain_text("by owner@example.com")
    await page.shot("made")
    await p.set_viewport_size({"width": 390, "height": 844})
    assert await p.evaluate("document.documentElement.scrollWidth") <= 390
    await page.shot("phone")
    await p.set_viewport_size({"width": 1280, "height": 900})

    customers = await client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"})
    assert customers.status == 200
    await page.go("/keys")
    await expect(p.locator("#new-key")).to_have_count(0)  # shown once only
    assert key[12:] not in await p.content()
    await expect(row).to_contain_text("127.0.0.1")  # its last use, and from where

    await p.get_by_role("button", name="Revoke warehouse sync", exact=True).click()
    await expect(p.get_by_role("status").first).to_have_text(
        "The key 'warehouse sync' is revoked: it works no more."
    )
    await expect(row).to_contain_text("revoked")
    await expect(p.get_by_role("button", name="Revoke warehouse sync")).to_have_count(0)
    await page.shot("revoked")
    refused = await client.get("/api/v1/customers", headers={"Authorization": f"Bearer {key}"})
    assert refused.status == 401
    owner = await system.db.users.find_one({"email": "owner@example.com"})
    actions = [e["action"] async for e in system.db.audit.find({"userId": str(owner["_id"])})]
    assert actions == ["key.created", "key.revoked"]


async def test_a_form_sent_twice_makes_one_key_and_a_bad_one_says_why(page: Watched, system: Crmd):
    p = page.page
    await page.sign_in("owner@example.com")
    await page.go("/keys")
    csrf = await p.locator('meta[name="csrf-token"]').get_attribute("content")
    once = await p.locator('input[name="once"]').get_attribute("value")
    form = {"csrf": csrf or "", "once": once or "", "name": "twice", "scope-read": "on"}
    first = await p.request.post(page.base + "/keys", form=form)
    assert first.status == 200 and "Your new key, twice" in await first.text()
    again = await p.request.post(page.base + "/keys", form=form)
    assert again.status == 409 and "This form was sent already" in await again.text()
    assert await system.db.api_keys.count_documents({}) == 1

    await p.reload()
    # A refused form is answered 422 (the browser notes that status): nothing was made,
    # so the audit log records no key.created.
    page.allowed.append("status of 422")
    await p.get_by_label("Name", exact=True).fill("nothing allowed")
    await p.get_by_role("checkbox", name="read").uncheck()
    await p.get_by_role("button", name="Make key", exact=True).click()
    await expect(p.get_by_role("alert")).to_have_text("Choose at least one thing the key may do.")
    await expect(p.get_by_label("Name", exact=True)).to_have_value("nothing allowed")
    await page.shot("refused")
    assert await system.db.api_keys.count_documents({}) == 1


async def test_a_viewer_sees_no_keys_page(page: Watched, second_page: Watched, system: Crmd):
    await page.sign_in("owner@example.com")
    await second_page.sign_in("viewer@example.com")
    owner = await system.db.users.find_one({"email": "owner@example.com"})
    viewer = await system.db.users.find_one({"email": "viewer@example.com"})
    shop = str(owner["_id"])
    await add_member(system.web_db, shop, str(viewer["_id"]), "viewer@example.com", "viewer")
    v = second_page.page
    await v.context.add_cookies([{"name": WORKSPACE_COOKIE, "value": shop, "url": page.base}])
    await second_page.go("/")
    main = v.get_by_role("navigation", name="Main")
    await expect(main.get_by_role("link", name="Customers", exact=True)).to_be_visible()
    await expect(main.get_by_role("link", name="API keys")).to_have_count(0)
    second_page.allowed.append("403")
    await second_page.go("/keys")
    await expect(v.get_by_role("heading", name="Not allowed")).to_be_visible()
    await expect(v.get_by_text("this needs the 'manage' permission")).to_be_visible()
    await second_page.shot("refused")
    # In their own workspace they own: the page is theirs.
    await v.context.clear_cookies(name=WORKSPACE_COOKIE)
    await second_page.go("/")
    await expect(main.get_by_role("link", name="API keys", exact=True)).to_be_visible()


async def test_the_page_works_without_a_script(
    browser: Browser, served: str, request: pytest.FixtureRequest
):
    """With no script the key is still shown to select and copy; the button, which
    would do nothing, is not."""
    page = await watched(browser, served, folder_for(request), java_script_enabled=False)
    p = page.page
    await page.sign_in("owner@example.com")
    await page.go("/keys")
    await p.get_by_label("Name", exact=True).fill("no script")
    await p.get_by_role("button", name="Make key", exact=True).click()
    await expect(p.get_by_role("heading", name="Your new key, no script")).to_be_visible()
    assert (await p.locator("#new-key").text_content() or "").startswith("crmd_")
    await expect(p.get_by_role("button", name="Copy key")).to_be_hidden()
    await p.get_by_role("button", name="Revoke no script", exact=True).click()
    await expect(p.get_by_role("row").filter(has_text="no script")).to_contain_text("revoked")
    await page.shot("no-script")
    await p.context.close()
    assert not page.unexpected(), page.unexpected()
