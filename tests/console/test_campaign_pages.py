"""The new-campaign form and a campaign's page, in the browser: the form posts nothing
twice (Post/Redirect/Get, preview included), asks before "Send now" with the audience's
size, previews the subject and the unsubscribe line, and takes "Send at" as its hint
says; the campaign's badge and figures agree while it sends, its recipients show a
short excerpt, unbroken addresses and numbered pages, its chart fills its card and
counts what the receipts said, and its AI summary is not kept past a retry."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import expect

from crmd.app import Crmd
from crmd.console.paging import DASH
from tests.campaigns.conftest import placed
from tests.console.conftest import Watched
from tests.console.seed import seed, sign_in_api
from tests.console.test_journey import figures, received
from tests.console.test_layout import one_line
from tests.ingest.conftest import upload, wait_done
from tests.receipts.test_receipts_api import settled

PEOPLE = 60


async def test_the_form_never_posts_twice_and_asks_before_sending(
    page: Watched, client: Any, system: Crmd
):
    await seed(client, "form@example.com", "Form", send=False)
    p = page.page
    await page.sign_in("form@example.com")
    await page.go("/campaigns/new")
    form = p.locator("form.campaign-form")
    assert (await form.bounding_box() or {"width": 0})["width"] > 1000  # the page's width
    await p.get_by_label("Name", exact=True).fill("Hello all")
    await p.get_by_label("Rule", exact=True).fill("spend > 1500")
    await p.get_by_label("Subject", exact=True).fill("News for {name}")
    await p.get_by_label("Message", exact=True).fill("Hi {name}")
    # Tracking starts as [campaigns] says: clicks on, opens off.
    await expect(p.get_by_label("Track clicks")).to_be_checked()
    await expect(p.get_by_label("Track opens")).not_to_be_checked()
    await p.get_by_label("Track opens").check()
    await p.get_by_label("Track clicks").uncheck()

    # Preview: a POST, then the form again at an address of its own.
    await p.get_by_role("button", name="Preview", exact=True).click()
    await p.wait_for_url(re.compile(r".*/campaigns/new\?form=[A-Za-z0-9_-]+$"))
    previews = p.get_by_role("region", name="Preview").locator(".preview")
    await expect(previews).to_have_count(2)
    await expect(previews.first.locator(".subject")).to_have_text("News for Form Person 3")
    await expect(previews.first.locator(".body")).to_contain_text(
        re.compile(r"^Hi Form Person 3\s+Unsubscribe: http://\S+/u/\S+$")
    )
    await page.shot("previewed")
    reloaded = await p.reload()
    assert reloaded is not None and reloaded.request.method == "GET"
    await expect(previews).to_have_count(2)
    await expect(p.get_by_label("Name", exact=True)).to_have_value("Hello all")
    await expect(p.get_by_label("Track opens")).to_be_checked()  # as it was left
    await expect(p.get_by_label("Track clicks")).not_to_be_checked()

    # "Send at" takes what its hint says.
    hint = await p.locator("#at-hint").inner_text()
    assert "YYYY-MM-DD HH:MM" in hint and "UTC" in hint
    placeholder = await p.get_by_label("Send at", exact=True).get_attribute("placeholder")
    assert placeholder and re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", placeholder)
    await p.get_by_label("Send at", exact=True).fill("2999-01-31 09:30")
    await p.get_by_role("button", name="Schedule", exact=True).click()
    await p.wait_for_url(re.compile(r".*/campaigns/[0-9a-f]{24}$"))
    scheduled = await system.db.campaigns.find_one({"name": "Hello all"})
    assert scheduled is not None and scheduled["status"] == "scheduled"
    assert scheduled["trackOpens"] is True and scheduled["trackClicks"] is False
    at = scheduled["scheduledAt"]
    assert at.replace(tzinfo=at.tzinfo or UTC) == datetime(2999, 1, 31, 9, 30, tzinfo=UTC)
    reloaded = await p.reload()
    assert reloaded is not None and reloaded.request.method == "GET"

    # "Send now" asks first, saying to how many; nothing is sent until it is answered.
    await page.go("/campaigns/new")
    await p.get_by_label("Name", exact=True).fill("Right now")
    await p.get_by_label("Rule", exact=True).fill("spend > 1500")
    await p.get_by_label("Message", exact=True).fill("Hi {name}")
    await p.get_by_role("button", name="Send now", exact=True).click()
    question = p.get_by_role("region", name="Send Right now now?")
    await expect(question).to_contain_text("It goes to 2 customers")
    await page.shot("asked")
    assert await system.db.campaigns.count_documents({"name": "Right now"}) == 0
    reloaded = await p.reload()
    assert reloaded is not None and reloaded.request.method == "GET"
    assert await system.db.campaigns.count_documents({"name": "Right now"}) == 0
    await p.get_by_role("button", name="Send to 2 customers").click()
    await p.wait_for_url(re.compile(r".*/campaigns/[0-9a-f]{24}(\?.*)?$"))
    assert await system.db.campaigns.count_documents({"name": "Right now"}) == 1
    # Settled, so that the live page does not reload itself while leaving it.
    await expect(p.locator(".lede .status")).to_have_text("completed", timeout=30_000)

    # A mistake comes back by a redirect too, the fields kept.
    await page.go("/campaigns/new")
    await p.get_by_label("Name", exact=True).fill("Broken")
    await p.get_by_label("Rule", exact=True).fill("spend >> 1")
    await p.get_by_label("Message", exact=True).fill("Hi")
    await p.get_by_role("button", name="Save as draft", exact=True).click()
    await p.wait_for_url(re.compile(r".*/campaigns/new\?form="))
    await expect(p.get_by_role("alert").first).to_contain_text("column")
    await expect(p.get_by_label("Name", exact=True)).to_have_value("Broken")


async def badge_and_pending(page: Watched) -> tuple[str, int]:
    """Read together, as a person sees them at one moment ("", 0 while the page loads)."""
    try:
        said = await page.page.evaluate(
            """() => [document.querySelector("[data-status-badge] .status")?.textContent,
                      document.querySelector('[data-figure="pending"]')?.textContent]"""
        )
    except PlaywrightError:  # the page reloading as the status moved on
        return "", 0
    if not said[0] or not said[1]:
        return "", 0
    return said[0].strip(), int(said[1].replace(",", ""))


async def reload(page: Watched) -> None:
    """Reload, as a person presses F5; the page reloads itself as its status moves, and
    when that comes first the browser aborts ours: then the page's own load is waited
    for and ours is done again."""
    for _ in range(3):
        try:
            await page.page.reload()
            return
        except PlaywrightError as error:
            if not any(word in str(error) for word in ("ERR_ABORTED", "detached", "interrupted")):
                raise
            await page.page.wait_for_load_state()
    await page.page.reload()


async def test_a_campaigns_page_reads_well_and_agrees_with_itself(
    page: Watched, client: Any, system: Crmd
):
    headers = await sign_in_api(client, "page@example.com")
    text = "customer_external_id,name,email,spend\n" + "".join(
        f"R{i},Reader {i},firstname.lastname.number{i}@a-rather-long-domain.example.com,{i}\n"
        for i in range(1, PEOPLE + 1)
    )
    await wait_done(
        client,
        headers,
        (await (await upload(client, headers, "customers", text)).json())["uploadId"],
    )
    p = page.page
    await page.sign_in("page@example.com")
    made = await client.post(
        "/api/v1/campaigns",
        json={"name": "Readers", "rule": "spend > 0", "message": "Dear {name}, " + "x" * 80},
        headers=headers,
    )
    campaign = (await made.json())["id"]
    await page.go(f"/campaigns/{campaign}")

    # From the first second to the last, the badge and the figures say the same.
    async with asyncio.timeout(60):
        while True:
            status, pending = await badge_and_pending(page)
            assert not (status == "completed" and pending > 0), (status, pending)
            assert not (status in ("queued", "planning") and 0 < pending < PEOPLE), status
            if status == "completed" and received(system) >= PEOPLE:
                break
            await asyncio.sleep(0.3)
        await settled(system)
    await reload(page)
    shown = await figures(page)
    api = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=headers)).json()
    assert shown == placed(api["stats"])
    assert api["stats"]["failed"] > 0 and api["stats"]["pending"] == 0
    await page.shot("completed")

    # The chart fills its card and counts what the receipts said.
    chart = p.locator("[data-chart] svg")
    card = p.locator("[data-chart]")
    assert (await chart.bounding_box() or {"width": 0})["width"] >= (
        await card.bounding_box() or {"width": 1}
    )["width"] - 2
    label = await chart.get_attribute("aria-label") or ""
    assert f"{PEOPLE} handed over" in label, label
    assert f"{api['stats']['delivered']:,} delivered" in label, label
    assert f"{api['stats']['failed']:,} failed" in label, label

    # Recipients: a short excerpt, addresses whole, pages by number.
    rows = p.get_by_role("region", name="Recipients").locator("tbody tr")
    await expect(rows).to_have_count(50)
    for cell in await p.locator("td.excerpt").all_inner_texts():
        assert "http" not in cell and len(cell) <= 60 and cell.startswith("Dear Reader"), cell
    for index in range(3):
        assert await one_line(page, f"tbody tr:nth-child({index + 1}) td.recipient a")
    pages = p.get_by_role("navigation", name="Recipient pages")
    await expect(pages).to_contain_text(f"1{DASH}50 of {PEOPLE} recipients")
    await pages.get_by_role("link", name="Next").click()
    await expect(rows).to_have_count(PEOPLE - 50)
    await expect(pages).to_contain_text(f"51{DASH}{PEOPLE} of {PEOPLE} recipients")
    await page.shot("second-page")

    # The summary told of these failures: a retry drops it, to be written again.
    await p.get_by_role("button", name="Summarise").click()
    summary = p.get_by_role("region", name="AI summary")
    await expect(summary.locator("p").first).not_to_be_empty()
    told = await summary.locator("p").first.inner_text()
    await p.get_by_role("button", name="Retry failed").click()
    # (The page may reload itself as the retry completes: each check waits for it.)
    await expect(summary).not_to_contain_text(told)
    await expect(summary.get_by_role("button", name="Summarise")).to_be_visible()
    failed = api["stats"]["failed"]
    async with asyncio.timeout(60):
        while received(system) < PEOPLE + failed:
            await asyncio.sleep(0.3)
        await settled(system)
        while True:
            api = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=headers)).json()
            if api["status"] == "completed" and api["stats"]["pending"] == 0:
                break
            await asyncio.sleep(0.3)
    await reload(page)
    retry = p.get_by_role("button", name="Retry failed")
    await expect(retry).to_have_count(1 if api["stats"]["failed"] else 0)
    assert ("retry_failed" in api["actions"]) == (api["stats"]["failed"] > 0)
