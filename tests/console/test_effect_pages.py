"""Issue 30 in the browser: the new-campaign form's holdout and A/B test, their
mistakes said beside the field that made them, and a campaign's effect panel once its
orders come in, at a desktop's width and a phone's."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import expect

from crmd.app import Crmd
from tests.campaigns.test_delivery_loop import wait_status
from tests.console.conftest import Watched
from tests.console.seed import seed, sign_in_api
from tests.ingest.conftest import upload, wait_done


async def test_the_form_says_a_mistake_beside_its_field_and_keeps_the_variants(
    page: Watched, client: Any, system: Crmd
):
    await seed(client, "ab-form@example.com", "Abf", send=False)
    p = page.page
    await page.sign_in("ab-form@example.com")
    await page.go("/campaigns/new")
    await p.get_by_label("Name", exact=True).fill("Tested")
    await p.get_by_label("Rule", exact=True).fill("spend > 0")
    await p.get_by_label("Message", exact=True).fill("Hi {name}")
    # The A/B section starts closed, and with script one empty slot at a time.
    section = p.locator("details[data-ab-test]")
    await expect(section).not_to_have_attribute("open", "")
    await section.locator("summary").click()
    await expect(p.get_by_label("Message B", exact=True)).to_be_visible()
    await expect(p.get_by_label("Message C", exact=True)).to_be_hidden()
    await p.get_by_role("button", name="Add a variant").click()
    await expect(p.get_by_label("Message C", exact=True)).to_be_focused()
    await p.get_by_label("Message B", exact=True).fill("Hello {name}")
    await p.get_by_label("Message C", exact=True).fill("Hey {nmae}")  # a mistyped placeholder
    await p.get_by_label("Send them to a test share, then the winner to the rest").check()
    await p.get_by_label("Test share %").fill("30")
    await p.get_by_label("Winner by").select_option("conversions")
    await page.shot("variants")
    await p.get_by_role("button", name="Save as draft", exact=True).click()
    await p.wait_for_url(re.compile(r".*/campaigns/new\?form="))
    slot_c = p.locator("[data-variant-slot]").nth(1)
    await expect(slot_c.get_by_role("alert")).to_contain_text("nmae")
    await expect(slot_c.locator(".marked mark")).to_have_text("{")  # at its column
    assert await p.locator("form > .problem, .fields > .problem").count() == 0  # not at the top
    await expect(section).to_have_attribute("open", "")
    await expect(p.get_by_label("Message B", exact=True)).to_have_value("Hello {name}")
    await expect(p.get_by_label("Test share %")).to_have_value("30")
    await expect(p.get_by_label("Winner by")).to_have_value("conversions")
    await page.shot("variant-mistake")

    # A holdout out of range (the browser's own check lifted, as a script could): the
    # API's limit, said beside the holdout.
    await p.get_by_label("Message C", exact=True).fill("Hey {name}")
    await p.get_by_label("Holdout %").evaluate("box => box.removeAttribute('max')")
    await p.get_by_label("Holdout %").fill("60")
    await p.get_by_role("button", name="Save as draft", exact=True).click()
    await p.wait_for_url(re.compile(r".*/campaigns/new\?form="))
    holdout = p.locator("#holdout").locator("xpath=..")
    await expect(holdout.get_by_role("alert")).to_contain_text("Holdout")
    await expect(holdout.get_by_role("alert")).to_contain_text("50")
    assert await system.db.campaigns.count_documents({"name": "Tested"}) == 0
    await page.shot("holdout-mistake")
    await page.page.set_viewport_size({"width": 390, "height": 844})
    await page.shot("holdout-mistake-phone")
    width = await p.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # nothing wider than the phone

    # The API's own refusal (a winner by clicks, with clicks not tracked), beside the
    # metric.
    await page.page.set_viewport_size({"width": 1280, "height": 900})
    await p.get_by_label("Holdout %").fill("20")
    await p.get_by_label("Winner by").select_option("clicks")
    await p.get_by_label("Track clicks").uncheck()
    await p.get_by_role("button", name="Save as draft", exact=True).click()
    await p.wait_for_url(re.compile(r".*/campaigns/new\?form="))
    metric = p.locator("#abTest-metric").locator("xpath=..")
    await expect(metric.get_by_role("alert")).to_contain_text("click tracking")
    await expect(p.get_by_label("Holdout %")).to_have_value("20")
    await page.shot("metric-mistake")

    # Within range, saved as a draft: the campaign has three variants and its test.
    await p.get_by_label("Winner by").select_option("conversions")
    await p.get_by_role("button", name="Save as draft", exact=True).click()
    await p.wait_for_url(re.compile(r".*/campaigns/[0-9a-f]{24}$"))
    stored = await system.db.campaigns.find_one({"name": "Tested"})
    assert stored is not None and stored["holdout"] == 20
    assert [v["message"] for v in stored["variants"]] == ["Hi {name}", "Hello {name}", "Hey {name}"]
    assert (stored["abTest"]["mode"], stored["abTest"]["testPercent"]) == ("winner", 30)
    assert stored["abTest"]["metric"] == "conversions"
    ab = p.locator("[data-ab]")
    await expect(ab.locator("table.variants tbody th")).to_have_text(["A", "B", "C"])
    await expect(ab.locator("[data-decide-at]")).to_contain_text("after the test share")
    await expect(p.locator("[data-effect]")).to_have_count(0)  # nobody messaged yet
    await expect(p.get_by_label("Variant", exact=True)).to_have_value("0")
    await page.shot("ab-draft")


PEOPLE = 240


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    """Every message delivered, soon: the groups are the holdout's alone."""
    return {"delay_min": 0.05, "delay_max": 0.2, "seed": 5, "failure_rate": 0.0}


async def test_the_effect_panel_draws_the_lift_once_orders_come_in(
    page: Watched, client: Any, system: Crmd
):
    """A campaign with half its audience held out; after the send, most messaged
    customers order and few held-out ones do: the page shows both groups, the lifts
    with their intervals drawn, the window still open, and the list its revenue."""
    headers = await sign_in_api(client, "effect@example.com")
    customers = "customer_external_id,name,email,spend\n" + "".join(
        f"E{i},Eff Person {i},eff{i}@example.com,{1000 + i}\n" for i in range(PEOPLE)
    )
    loaded = await (await upload(client, headers, "customers", customers)).json()
    assert (await wait_done(client, headers, loaded["uploadId"]))["status"] == "done"
    made = await client.post(
        "/api/v1/campaigns",
        json={"name": "Held half", "rule": "spend > 0", "message": "Hi {name}", "holdout": 50},
        headers=headers,
    )
    assert made.status == 201, await made.text()
    campaign_id = (await made.json())["id"]
    await wait_status(client, headers, campaign_id, "completed", 60)
    held = {
        log["customerId"]
        async for log in system.db.communication_log.find(
            {"campaignId": campaign_id, "status": "HELD_OUT"}, {"customerId": 1}
        )
    }
    assert 60 < len(held) < 180  # about half, at random
    ids = {
        c["customer_external_id"]: c["id"]
        for c in (await (await client.get("/api/v1/customers?limit=500", headers=headers)).json())[
            "items"
        ]
    }
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    orders = "order_external_id,customer_external_id,amount,items,orderDate\n"
    bought = {"messaged": 0, "held": 0}
    for i in range(PEOPLE):
        kept = ids[f"E{i}"] in held
        if i % 10 < (1 if kept else 6):  # 60 % of the messaged order, 10 % of the held out
            orders += f"EO{i},E{i},{500 + i},gift,{now}\n"
            bought["held" if kept else "messaged"] += 1
    loaded = await (await upload(client, headers, "orders", orders)).json()
    assert (await wait_done(client, headers, loaded["uploadId"]))["status"] == "done"

    async with asyncio.timeout(30):  # the clock sums what was attributed
        while True:
            answer = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=headers)
            effect = (await answer.json())["effect"]
            counted = (effect["messaged"]["converted"], effect["heldOut"]["converted"])
            if counted == (bought["messaged"], bought["held"]):
                break
            await asyncio.sleep(0.3)
    p = page.page
    await page.sign_in("effect@example.com")
    await page.go(f"/campaigns/{campaign_id}")
    panel = p.locator("[data-effect]")
    await expect(panel).to_be_visible()
    rows = panel.locator("table.groups tbody tr")
    await expect(rows.nth(0).locator("th")).to_have_text("Messaged")
    await expect(rows.nth(0).locator("td").nth(0)).to_have_text(f"{PEOPLE - len(held):,}")
    await expect(rows.nth(0).locator("td").nth(1)).to_have_text(f"{bought['messaged']:,}")
    await expect(rows.nth(1).locator("th")).to_have_text("Held out")
    await expect(rows.nth(1).locator("td").nth(0)).to_have_text(f"{len(held):,}")
    await expect(rows.nth(1).locator("td").nth(1)).to_have_text(f"{bought['held']:,}")
    charts = panel.locator("svg.intervals")
    await expect(charts).to_have_count(2)
    for i in range(2):
        chart = charts.nth(i)
        await expect(chart.locator("[data-zero]")).to_have_count(1)
        await expect(chart.locator("[data-interval]")).to_have_count(1)
        await expect(chart.locator("[data-estimate]")).to_have_count(1)
        box = await chart.bounding_box()
        assert box is not None and box["width"] > 300
    # 60 % against 10 %: the conversion interval lies above zero, and is said to.
    await expect(panel.locator("[data-lift='1']")).to_contain_text("above zero")
    await expect(panel.locator("[data-effect-statement]")).to_contain_text(
        "the campaign made a difference"
    )
    await expect(panel.locator("[data-provisional]")).to_contain_text(
        "the attribution window closes at"
    )
    await page.shot("effect")
    await panel.screenshot(path=str(page.folder / "effect-panel.png"))
    await p.set_viewport_size({"width": 390, "height": 844})
    await page.shot("effect-phone")
    await panel.screenshot(path=str(page.folder / "effect-panel-phone.png"))
    assert await p.evaluate("document.documentElement.scrollWidth") <= 390
    box = await charts.first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    await p.set_viewport_size({"width": 1280, "height": 900})

    # The recipients filtered to the held out: each of them, and no one else.
    await p.get_by_label("Status", exact=True).select_option("HELD_OUT")
    await p.get_by_role("button", name="Filter", exact=True).click()
    await p.wait_for_url(re.compile(r".*status=HELD_OUT"))
    statuses = p.get_by_role("region", name="Recipients").locator("tbody .status")
    await expect(statuses).to_have_count(min(len(held), 50))
    assert set(await statuses.all_inner_texts()) == {"held out"}

    # The list shows its revenue: what the messaged customers' orders brought.
    revenue = sum(500 + i for i in range(PEOPLE) if ids[f"E{i}"] not in held and i % 10 < 6)
    await page.go("/campaigns")
    await expect(p.locator("[data-revenue]").first).to_have_text(f"₹{revenue:,.2f}")
    await page.shot("list")


async def test_an_ab_test_shows_its_variants_drawn_and_the_winner_with_its_reason(
    page: Watched, client: Any, system: Crmd
):
    headers = await sign_in_api(client, "ab@example.com")
    customers = "customer_external_id,name,email,spend\n" + "".join(
        f"V{i},Var Person {i},var{i}@example.com,{100 + i}\n" for i in range(90)
    )
    loaded = await (await upload(client, headers, "customers", customers)).json()
    assert (await wait_done(client, headers, loaded["uploadId"]))["status"] == "done"
    body = {
        "name": "Three ways",
        "rule": "spend > 0",
        "variants": [{"message": f"Offer {n} for {{name}}"} for n in "ABC"],
        "abTest": {"mode": "winner", "testPercent": 60, "waitMinutes": 0, "metric": "conversions"},
    }
    made = await client.post("/api/v1/campaigns", json=body, headers=headers)
    assert made.status == 201, await made.text()
    campaign_id = (await made.json())["id"]
    await wait_status(client, headers, campaign_id, "completed", 60)

    p = page.page
    await page.sign_in("ab@example.com")
    await page.go(f"/campaigns/{campaign_id}")
    ab = p.locator("[data-ab]")
    await expect(ab.locator("table.variants tbody th")).to_have_text(["A", "B", "C"])
    recipients = await ab.locator("table.variants tbody td:nth-child(3)").all_inner_texts()
    assert sum(int(n) for n in recipients) == 90  # the test share and the winner's rest
    winner = ab.locator("[data-winner]")
    await expect(winner).to_contain_text(re.compile(r"Winner: [ABC], picked \d{4}-\d\d-\d\d"))
    label = (await winner.locator("strong").inner_text()).removeprefix("Winner: ")
    await expect(ab.locator("tr.won th")).to_have_text(label)
    chart = ab.locator("svg.intervals")
    await expect(chart.locator("[data-interval]")).to_have_count(3)
    await expect(chart.locator("[data-zero]")).to_have_count(1)
    await page.shot("ab-winner")
    await p.set_viewport_size({"width": 390, "height": 844})
    await page.shot("ab-winner-phone")
    await ab.screenshot(path=str(page.folder / "ab-panel-phone.png"))
    assert await p.evaluate("document.documentElement.scrollWidth") <= 390


async def test_while_an_ab_test_waits_its_status_and_the_time_of_its_winner_are_shown(
    page: Watched, client: Any, system: Crmd
):
    headers = await sign_in_api(client, "waiting@example.com")
    customers = "customer_external_id,name,email,spend\n" + "".join(
        f"W{i},Wait Person {i},wait{i}@example.com,{100 + i}\n" for i in range(60)
    )
    loaded = await (await upload(client, headers, "customers", customers)).json()
    assert (await wait_done(client, headers, loaded["uploadId"]))["status"] == "done"
    body = {
        "name": "Waiting",
        "rule": "spend > 0",
        "variants": [{"message": "One {name}"}, {"message": "Two {name}"}],
        "abTest": {"mode": "winner", "testPercent": 50, "waitMinutes": 600, "metric": "revenue"},
    }
    made = await client.post("/api/v1/campaigns", json=body, headers=headers)
    assert made.status == 201, await made.text()
    campaign_id = (await made.json())["id"]
    waiting = await wait_status(client, headers, campaign_id, "testing", 60)
    decide_at = datetime.fromisoformat(waiting["abTest"]["decideAt"].replace("Z", "+00:00"))

    p = page.page
    await page.sign_in("waiting@example.com")
    await page.go(f"/campaigns/{campaign_id}")
    await expect(p.locator(".lede .status")).to_have_text("testing")
    await expect(p.locator("[data-decide-at]")).to_have_text(
        f"The winner is picked at {decide_at:%Y-%m-%d %H:%M} UTC."
    )
    await expect(p.locator("[data-winner]")).to_have_count(0)
    await page.shot("testing")
    await page.go("/campaigns")
    row = p.get_by_role("row", name=re.compile("Waiting"))
    await expect(row.locator(".status")).to_have_text("testing")
    # Cancelled, so that the clock leaves it be as the test ends.
    cancelled = await client.post(f"/api/v1/campaigns/{campaign_id}/cancel", headers=headers)
    assert cancelled.status == 200, await cancelled.text()
