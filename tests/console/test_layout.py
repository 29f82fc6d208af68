"""Every console page at a desktop's width (1280 px) and a phone's (390 px): nothing
wider than the window, the header in at most two lines at 1280 px (the navigation, then
the workspace with its role, the user's email and "Sign out" unwrapped, when they do not
fit beside it), and at 390 px a menu that opens to the whole navigation. A screenshot
of each page at each width is left in ``screenshots/test_layout/``."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser

from tests.console.conftest import Watched, folder_for, watched
from tests.console.seed import Seeded, seed

WIDTHS = (1280, 390)


def every_page(seeded: Seeded) -> list[tuple[str, str]]:
    """(name, path) of every page an operator can open."""
    return [
        ("dashboard", "/"),
        ("customers", "/customers"),
        ("customer", f"/customers/{seeded.customer_id}"),
        ("orders", "/orders"),
        ("imports", "/imports"),
        ("import", f"/imports/{seeded.upload_id}"),
        ("segments", "/segments"),
        ("segment", f"/segments/{seeded.segment_id}"),
        ("campaigns", "/campaigns"),
        ("campaign-new", "/campaigns/new"),
        ("campaign", f"/campaigns/{seeded.campaign_id}"),
        ("flows", "/flows"),
        ("flow-new", "/flows/new"),
        ("flow", f"/flows/{seeded.flow_id}"),
        ("flow-edit", f"/flows/{seeded.flow_id}/edit"),
        ("suppressions", "/suppressions"),
        ("members", "/members"),
        ("plugins", "/plugins"),
        ("system", "/system"),
        ("reference", "/reference"),
        ("audit", "/audit"),
        ("not-found", "/no-such-page"),
    ]


async def overflow(page: Watched) -> int:
    return int(await page.page.evaluate("document.scrollingElement.scrollWidth"))


async def wider(page: Watched, width: int) -> list[str]:
    """What sticks out past the window's right edge (for the failure's message)."""
    return list(
        await page.page.evaluate(
            """width => [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right > width + 0.5)
                .slice(0, 8)
                .map(e => e.tagName + "." + e.className + " " + e.getBoundingClientRect().right)""",
            width,
        )
    )


async def one_line(page: Watched, selector: str) -> bool:
    """The element's text is on one line: its pieces all sit at one height."""
    return bool(
        await page.page.locator(selector).evaluate(
            """e => {
                const range = document.createRange();
                range.selectNodeContents(e);
                const tops = [...range.getClientRects()].map(r => Math.round(r.top));
                return tops.length > 0 && new Set(tops).size === 1;
            }"""
        )
    )


async def test_every_page_fits_a_desktop_and_a_phone(
    client: Any, browser: Browser, served: str, request: Any
):
    seeded = await seed(
        client, "a.rather.long.address.for.the.header@example.com", "Layout", send=True
    )
    folder = folder_for(request)
    for width in WIDTHS:
        page = await watched(browser, served, folder, viewport={"width": width, "height": 844})
        page.allowed.append(r"status of 404 \(Not Found\)")  # the not-found page, on purpose
        await page.page.set_viewport_size({"width": width, "height": 844})
        await page.go("/sign-in")
        await page.shot(f"{width}-sign-in")
        assert await overflow(page) <= width, ("sign-in", width)
        await page.sign_in("a.rather.long.address.for.the.header@example.com")
        for name, path in every_page(seeded):
            await page.go(path)
            await page.shot(f"{width}-{name}")
            assert await overflow(page) <= width, (name, width, await wider(page, width))
            header = page.page.locator("header.bar")
            if width >= 1000:
                assert await one_line(page, "header.bar .who .email"), name
                assert await one_line(page, "header.bar .who button"), name
                place = page.page.locator("header.bar .workspace")
                assert (await place.bounding_box() or {"height": 99})["height"] < 40, name
                assert (await header.bounding_box() or {"height": 999})["height"] < 110, name
                assert await page.page.get_by_role("navigation", name="Main").is_visible()
            else:
                links = page.page.get_by_role("navigation", name="Main").get_by_role("link")
                assert not await links.first.is_visible(), "the menu starts closed"
        if width < 1000:
            await page.go("/")
            await page.page.get_by_text("Menu", exact=True).click()
            menu = page.page.get_by_role("navigation", name="Main")
            for label in ("Customers", "Campaigns", "System", "API"):
                assert await menu.get_by_role("link", name=label, exact=True).is_visible()
            await page.shot(f"{width}-menu-open")
            assert await overflow(page) <= width
            await menu.get_by_role("link", name="Campaigns", exact=True).click()
            await page.page.wait_for_url(served + "/campaigns")
        assert not page.unexpected(), page.unexpected()
        await page.page.context.close()
