"""Two people share a workspace in their browsers: the owner invites a viewer by e-mail,
the viewer follows the link, joins, switches between workspaces and sees the owner's
customers, but cannot make a campaign (no button; the guard's 403 page when forced); the
owner makes them a sender, and then they send one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.console.conftest import Watched
from tests.console.test_journey import upload

CUSTOMERS = "customer_external_id,name,email,phone,location,spend,visits\n" + "".join(
    f"T{i},Shared Customer {i},t{i}@example.com,,Pune,{i * 100},1\n" for i in range(1, 4)
)
FORCED_CAMPAIGN = """(csrf) => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/campaigns";
  const fields = {csrf, name: "Forced", rule: "spend > 0", message: "Hi", action: "send"};
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.type = "hidden"; input.name = name; input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


def header(page: Page) -> Any:
    return page.get_by_role("banner")


async def shots(page: Page, folder: Path, name: str) -> None:
    """The page at 1280 and at 390 px wide (the menu opened, to show the header's
    workspace), saved in ``folder``."""
    await page.set_viewport_size({"width": 1280, "height": 900})
    for control in (page.locator(".bar .workspace"), page.get_by_role("button", name="Sign out")):
        box = await control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 1280
    await page.screenshot(path=str(folder / f"{name}-1280.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.get_by_text("Menu", exact=True).click()
    await expect(page.locator(".bar .workspace")).to_be_visible()
    await page.screenshot(path=str(folder / f"{name}-390.png"), full_page=True)
    await page.get_by_text("Menu", exact=True).click()
    await page.set_viewport_size({"width": 1280, "height": 900})


async def test_two_people_share_a_workspace_with_different_roles(
    page: Watched, second_page: Watched, tmp_path: Path
) -> None:
    owner, viewer = page.page, second_page.page
    await page.sign_in("owner@example.com")
    await upload(page, "customers", "shared.csv", CUSTOMERS)

    await page.nav("Members")
    await expect(owner.get_by_role("heading", name="Members", exact=True)).to_be_visible()
    await owner.get_by_label("Email", exact=True).fill("viewer@example.com")
    await owner.get_by_label("Role", exact=True).select_option("viewer")
    await owner.get_by_role("button", name="Invite", exact=True).click()
    await expect(owner.get_by_role("status")).to_contain_text(
        "viewer@example.com is invited as viewer"
    )
    link = await owner.get_by_label("Invitation link for viewer@example.com").input_value()
    assert re.fullmatch(r"https?://[^/]+/invitations/[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}", link)
    await expect(header(owner).locator(".workspace .role")).to_have_text("owner")
    await expect(owner.get_by_role("button", name="Leave")).to_have_count(0)  # the last owner
    await shots(owner, tmp_path, "members-owner")

    # The invited person signs in with the invited address and follows the link.
    await second_page.sign_in("viewer@example.com")
    await second_page.go(link[link.index("/invitations/") :])
    await expect(viewer.get_by_role("heading", name=re.compile("^Join "))).to_be_visible()
    await expect(viewer.locator(".invitation")).to_contain_text("as viewer")
    await viewer.get_by_role("button", name="Accept and join").click()
    await viewer.wait_for_url(second_page.base + "/")
    await expect(viewer.get_by_role("status")).to_contain_text("as viewer")
    switcher = header(viewer).get_by_label("Workspace", exact=True)
    shared = await switcher.input_value()
    await expect(header(viewer).locator(".workspace .role")).to_have_text("viewer")
    await second_page.nav("Customers")
    await expect(viewer.get_by_role("link", name="Shared Customer 2")).to_be_visible()

    # Their own workspace has none of it; switching back shows it again.
    own = await switcher.locator("option:not([selected])").get_attribute("value")
    await switcher.select_option(own)
    await header(viewer).get_by_role("button", name="Switch").click()
    await expect(header(viewer).locator(".workspace .role")).to_have_text("owner")
    await second_page.nav("Customers")
    await expect(viewer.get_by_role("link", name="Shared Customer 2")).to_have_count(0)
    await switcher.select_option(shared)
    await header(viewer).get_by_role("button", name="Switch").click()
    await expect(viewer.get_by_role("status")).to_contain_text("as viewer")

    # A viewer is shown no way to make a campaign, and is refused when forcing one.
    await second_page.nav("Campaigns")
    await expect(viewer.get_by_role("heading", name="Campaigns")).to_be_visible()
    await expect(viewer.get_by_role("link", name="New campaign")).to_have_count(0)
    await second_page.go("/campaigns/new")
    await expect(viewer.get_by_role("button", name="Send now")).to_have_count(0)
    csrf = await viewer.locator('meta[name="csrf-token"]').get_attribute("content")
    second_page.allowed.append(r"status of 403")
    async with viewer.expect_navigation() as forced:
        await viewer.evaluate(FORCED_CAMPAIGN, csrf)
    answer = await forced.value
    assert answer is not None and answer.status == 403
    await expect(viewer.get_by_role("heading", name="Not allowed")).to_be_visible()
    await expect(viewer.locator("main")).to_contain_text("'send' permission")
    await second_page.nav("Members")
    await expect(viewer.get_by_role("button", name="Invite")).to_have_count(0)
    await expect(viewer.get_by_role("button", name="Leave")).to_be_visible()
    await shots(viewer, tmp_path, "members-viewer")

    # The owner makes them a sender; now they can send.
    await page.nav("Members")
    await expect(owner.get_by_label("Invitation link for viewer@example.com")).to_have_count(0)
    await owner.get_by_label("Role of viewer@example.com", exact=True).select_option("sender")
    await owner.get_by_role("button", name="Change the role of viewer@example.com").click()
    await expect(owner.get_by_role("status")).to_contain_text("from viewer to sender")
    await second_page.nav("Campaigns")
    await expect(header(viewer).locator(".workspace .role")).to_have_text("sender")
    await viewer.get_by_role("link", name="New campaign").click()
    await viewer.get_by_label("Name", exact=True).fill("From the sender")
    await viewer.get_by_label("Rule", exact=True).fill("spend > 0")
    await viewer.get_by_label("Message", exact=True).fill("Hello {first_name|there}")
    await viewer.get_by_role("button", name="Send now").click()
    await viewer.get_by_role("button", name="Send to 3 customers").click()
    await viewer.wait_for_url(re.compile(r".*/campaigns/[0-9a-f]{24}(\?.*)?$"))
    await expect(viewer.locator(".lede .status")).to_have_text("completed", timeout=60_000)
    await page.nav("Campaigns")
    await expect(owner.get_by_role("link", name="From the sender")).to_be_visible()


async def test_a_link_opened_signed_out_signs_in_first_then_works_once(
    page: Watched, second_page: Watched
) -> None:
    owner, invited = page.page, second_page.page
    await page.sign_in("owner@example.com")
    await page.go("/members")
    await owner.get_by_label("Email", exact=True).fill("ed@example.com")
    await owner.get_by_label("Role", exact=True).select_option("editor")
    await owner.get_by_role("button", name="Invite", exact=True).click()
    link = await owner.get_by_label("Invitation link for ed@example.com").input_value()
    path = link[link.index("/invitations/") :]

    await second_page.go(path)
    await invited.wait_for_url(re.compile(r".*/sign-in\?next=/invitations/.*"))
    await invited.get_by_label("Email", exact=True).fill("someone.else@example.com")
    await invited.get_by_role("button", name="Sign in", exact=True).click()
    await invited.wait_for_url(second_page.base + path)
    await expect(invited.get_by_role("alert")).to_contain_text(
        "This invitation is for ed@example.com"
    )
    await expect(invited.get_by_role("button", name="Accept and join")).to_have_count(0)

    await invited.get_by_role("button", name="Sign out").click()
    await second_page.go(path)
    await invited.get_by_label("Email", exact=True).fill("ed@example.com")
    await invited.get_by_role("button", name="Sign in", exact=True).click()
    await invited.wait_for_url(second_page.base + path)
    await expect(invited.locator(".invitation")).to_contain_text("as editor")
    await invited.get_by_role("button", name="Accept and join").click()
    await expect(invited.get_by_role("status")).to_contain_text("as editor")
    await expect(header(invited).locator(".workspace .role")).to_have_text("editor")

    second_page.allowed.append(r"status of 410")
    answer = await invited.goto(second_page.base + path)
    assert answer is not None and answer.status == 410
    await expect(invited.get_by_role("heading", name="No longer valid")).to_be_visible()
    await expect(invited.locator("main")).to_contain_text("this invitation was used")
    await page.go("/members")
    await expect(owner.get_by_text("No invitation is waiting.")).to_be_visible()
    await expect(owner.get_by_label("Role of ed@example.com", exact=True)).to_have_value("editor")
