"""The flows' pages in Chromium: an operator builds a flow with the editor (an event
trigger, a wait, a branch with a send in each arm, an exit), is told of a bad wait
beside its step, fixes it, saves and activates it, edits it into a new version, and
sees customers go through it (entered by events, the clock sped up) on the list, the
flow's page and the customer's page; and every form of the flows' pages, in a browser
that runs no script."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from crmd.app import Crmd
from crmd.config import Config
from crmd.services.embedded import Urls
from crmd.testing.servers import make_test_config
from tests.campaigns.test_effect import load_customers
from tests.console.conftest import Watched, folder_for, watched
from tests.flows.engine_helpers import event, put, user_of

SCALE = 3600.0
"""An hour of waiting passes in a second."""
PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 900}


@pytest.fixture
def config(services: Urls, port: int) -> Config:
    return make_test_config(
        services,
        server={"port": port},
        plugins={
            "dummy_vendor": {"delay_min": 0.05, "delay_max": 0.2, "seed": 5, "failure_rate": 0}
        },
        campaigns={"clock_interval_seconds": 0.2, "clock_lease_seconds": 3.0},
        flows={"time_scale": SCALE},
    )


@pytest.fixture
async def served(client: Any, system: Crmd) -> AsyncIterator[str]:
    """crmd with every actor the flows need: the engine and the clock for waits, the
    dispatch and receipts actors for the messages."""
    supervisor = system.start(("ingest", "dispatch", "receipts", "clock", "flows"))
    assert await supervisor.wait_healthy(10)
    yield str(client.make_url("")).rstrip("/")


@pytest.fixture
async def scriptless(
    browser: Browser, served: str, request: pytest.FixtureRequest
) -> AsyncIterator[Watched]:
    seen = await watched(browser, served, folder_for(request), java_script_enabled=False)
    yield seen
    await seen.shot("last")
    await seen.page.context.close()
    assert not seen.unexpected(), seen.unexpected()


async def both_widths(page: Watched, name: str) -> None:
    """Screenshots of the page at 1280 px and at 390 px (a phone)."""
    await page.shot(f"{name}-1280")
    await page.page.set_viewport_size(PHONE)
    await page.shot(f"{name}-390")
    await page.page.set_viewport_size(WIDE)


async def kind(page: Watched, step: str, chosen: str) -> None:
    await page.page.get_by_label(f"{step}: What it does", exact=True).select_option(label=chosen)


async def until_shown(page: Watched, locator: str, text: str, seconds: float = 30) -> None:
    """Reload until ``text`` shows in ``locator`` (the figures move as the flow runs)."""
    async with asyncio.timeout(seconds):
        while text not in await page.page.locator(locator).inner_text():
            await asyncio.sleep(0.5)
            await page.page.reload()


async def test_an_operator_builds_a_flow_and_watches_customers_go_through_it(
    page: Watched, client: Any, auth: Any, system: Crmd
) -> None:
    await load_customers(client, auth, 6)  # C0..C5, spending 100..105
    page.allowed.append(r"status of 422 \(")
    p = page.page
    await page.sign_in("ops@example.com")
    await page.nav("Flows")
    await expect(p.get_by_text("No flows yet.")).to_be_visible()
    await p.get_by_role("link", name="New flow").click()

    await p.get_by_label("Name", exact=True).fill("Welcome")
    await expect(p.get_by_label("Trigger", exact=True)).to_have_value("event")
    await p.get_by_label("Event name", exact=True).fill("signup")
    await p.get_by_label("Step 1: Wait for", exact=True).fill("1000y")
    await p.get_by_role("button", name="Add a step", exact=True).click()
    await kind(page, "Step 2", "Branch on a rule")
    await expect(p.get_by_label("Step 2: Wait for", exact=True)).to_be_hidden()
    await p.get_by_label("Step 2: If this rule holds", exact=True).fill("spend > 102")
    await p.get_by_role("button", name="Add a step to step 2 if yes").click()
    await kind(page, "Step 2, if yes: step 1", "Send a message")
    await p.get_by_label("Step 2, if yes: step 1: Message", exact=True).fill("Big thanks {name}")
    await p.get_by_role("button", name="Add a step to step 2 if no").click()
    await kind(page, "Step 2, if no: step 1", "Send a message")
    await p.get_by_label("Step 2, if no: step 1: Message", exact=True).fill("Thanks {name}")
    await p.get_by_role("button", name="Add a step", exact=True).click()
    await kind(page, "Step 3", "Exit")
    await p.get_by_role("button", name="Save and activate").click()

    # The wait of a thousand years: said beside step 1's field, and at the top in words.
    beside = p.locator("#step-0").locator(".field-error").first
    await expect(beside).to_contain_text("'1000y' is not a duration")
    await expect(p.get_by_label("Step 1: Wait for", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    await expect(p.locator("#problem")).to_contain_text("Step 1, wait for:")
    await expect(p.get_by_label("Step 2, if no: step 1: Message", exact=True)).to_have_value(
        "Thanks {name}"
    )
    assert await system.db.flows.count_documents({}) == 0, "nothing is stored when refused"
    await both_widths(page, "editor-error")
    await p.get_by_label("Step 1: Wait for", exact=True).fill("1h")
    await p.get_by_role("button", name="Save and activate").click()
    await expect(p.get_by_role("status")).to_contain_text("Welcome is saved and active.")
    await expect(p.locator(".lede .status")).to_have_text("active")
    flow_url = p.url
    flow_id = flow_url.rsplit("/", 1)[-1]
    stored = await system.db.flows.find_one({"name": "Welcome"})
    assert stored is not None and str(stored["_id"]) == flow_id
    branch = stored["definition"]["steps"][1]["branch"]
    assert branch["yes"][0]["send"]["message"] == "Big thanks {name}"
    assert stored["definition"]["steps"][2] == {"exit": {}}

    # Edited while active: a new version, and it says so before and after.
    await p.get_by_role("link", name="Edit").click()
    await expect(p.get_by_role("note")).to_contain_text("makes version 2")
    await expect(p.get_by_role("note")).to_contain_text("keep version 1")
    await expect(p.get_by_label("Step 2, if yes: step 1: Message", exact=True)).to_have_value(
        "Big thanks {name}"
    )
    await page.page.set_viewport_size(WIDE)
    await both_widths(page, "editor")
    await p.get_by_label("Step 1: Wait for", exact=True).fill("2h")
    await p.get_by_role("button", name=re.compile("^Save")).click()
    await expect(p.get_by_role("status")).to_contain_text(
        "saved as version 2; customers already inside finish version 1"
    )
    await expect(p.locator(".lede")).to_contain_text("version 2")
    await expect(p.locator("tr[data-path='0']")).to_contain_text("wait 2h")

    # Customers enter by events; the 2 h wait passes in about 2 s.
    user = await user_of(system)
    ids = {
        d["customer_external_id"]: str(d["_id"])
        async for d in system.db.customers.find({"userId": user})
    }
    assert await put(system, user, [event(ids["C0"], "signup", "s0")]) == 1
    assert await put(system, user, [event(ids["C5"], "signup", "s5")]) == 1
    await system.db.events.insert_one(
        {
            "userId": user,
            "customerId": ids["C5"],
            "name": "viewed",
            "properties": {"page": "/pricing", "long": "x" * 300},
            "timestamp": datetime.now(UTC),
        }
    )
    await page.nav("Flows")
    row = p.get_by_role("row").filter(has=p.get_by_role("link", name="Welcome"))
    await expect(row).to_contain_text("when event signup happens")
    await expect(row.locator("[data-count='entered']")).to_have_text("2")
    await until_shown(page, "tr:has(a:text('Welcome')) [data-count='messaged']", "2")
    await both_widths(page, "list")

    await p.get_by_role("link", name="Welcome").click()
    await until_shown(page, "[data-figure='exited']", "2")
    await expect(p.locator("tr[data-path='0'] [data-runs]")).to_have_text("2")
    await expect(p.locator("tr[data-path='1.yes.0'] [data-runs]")).to_have_text("1")
    await expect(p.locator("tr[data-path='1.no.0'] [data-runs]")).to_have_text("1")
    await expect(p.locator("tr[data-path='2'] [data-runs]")).to_have_text("2")
    messages = p.get_by_role("region", name="Messages it sent")
    await expect(messages).to_contain_text("Big thanks Customer 5")
    await expect(messages).to_contain_text("Thanks Customer 0")
    handed = p.locator("tr[data-path='1.yes.0']")
    for figure, count in (("pending", "0"), ("failed", "0"), ("suppressed", "0")):
        await expect(handed.locator(f"[data-delivery='{figure}']")).to_have_text(count)
    sent = [
        await handed.locator(f"[data-delivery='{f}']").inner_text() for f in ("sent", "delivered")
    ]
    assert sorted(sent) == ["0", "1"], "the step's one message, handed over or delivered"
    await expect(p.get_by_role("region", name="Versions")).to_contain_text("Version 2")
    await both_widths(page, "flow")

    await messages.get_by_role("link", name="Customer 5").click()
    flows = p.get_by_role("region", name="Flows")
    await expect(flows.get_by_role("link", name="Welcome")).to_be_visible()
    await expect(flows).to_contain_text("exited")
    events = p.get_by_role("region", name="Events")
    await expect(events).to_contain_text("viewed")
    await expect(events).to_contain_text('"page":"/pricing"')
    await expect(events.locator("td.properties")).to_contain_text("\u2026")
    sent = p.get_by_role("region", name="Messages sent")
    await expect(sent).to_contain_text("Big thanks Customer 5")
    await expect(sent.get_by_role("link", name="Welcome · v2 · step 1.yes.0")).to_have_attribute(
        "href", f"/flows/{flow_id}"
    )
    await page.shot("customer")
    await page.go(f"/customers/{ids['C1']}")
    await expect(p.get_by_text("Not in any flow.")).to_be_visible()
    await expect(p.get_by_text("No events yet.")).to_be_visible()


async def test_every_flow_form_works_without_javascript(scriptless: Watched, system: Crmd):
    page = scriptless
    page.allowed.append(r"status of 4[0-9]{2} \(")
    p = page.page
    await page.sign_in("plain@example.com")
    await page.nav("Flows")
    await p.get_by_role("link", name="New flow").click()
    await p.get_by_label("Name", exact=True).fill("Plain")
    await p.get_by_label("Event name", exact=True).fill("signup")
    await p.get_by_label("Step 1: Wait for", exact=True).fill("forever")
    await p.get_by_role("button", name="Add a step", exact=True).click()
    await expect(p.get_by_label("Name", exact=True)).to_have_value("Plain")
    await expect(p.get_by_label("Step 1: Wait for", exact=True)).to_have_value("forever")
    await kind(page, "Step 2", "Send a message")  # the stylesheet shows its fields
    await p.get_by_label("Step 2: Message", exact=True).fill("Hello {name}")
    await p.get_by_role("button", name="Add a step", exact=True).click()
    await kind(page, "Step 3", "Add to a list")
    await p.get_by_label("Step 3: List attribute", exact=True).fill("tags")
    await p.get_by_label("Step 3: Value", exact=True).fill("welcomed")
    await p.get_by_role("button", name="Move step 3 up").click()
    await expect(p.get_by_label("Step 2: List attribute", exact=True)).to_have_value("tags")
    await expect(p.get_by_label("Step 3: Message", exact=True)).to_have_value("Hello {name}")
    await p.get_by_role("button", name="Save draft").click()
    await expect(p.locator("#step-0 .field-error")).to_contain_text("'forever' is not a duration")
    await page.shot("refused")
    await p.get_by_label("Step 1: Wait for", exact=True).fill("1d")
    await p.get_by_role("button", name="Save draft").click()
    await expect(p.get_by_role("status")).to_contain_text("Plain is saved as a draft.")
    await expect(p.locator(".lede .status")).to_have_text("draft")

    await p.get_by_role("button", name="Activate").click()
    await expect(p.get_by_role("status")).to_contain_text("Activated Plain.")
    await p.get_by_role("button", name="Pause").click()
    await expect(p.locator(".lede .status")).to_have_text("paused")

    await p.get_by_role("link", name="Edit").click()
    await p.get_by_role("button", name="Remove step 2").click()
    await expect(p.get_by_label("Step 2: Message", exact=True)).to_have_value("Hello {name}")
    await p.get_by_role("button", name="Save and activate").click()
    await expect(p.get_by_role("status")).to_contain_text(
        "Plain is saved as version 2; customers already inside finish version 1, and active."
    )
    stored = await system.db.flows.find_one({"name": "Plain"})
    assert stored is not None and stored["status"] == "active" and stored["version"] == 2
    assert [list(s) for s in stored["definition"]["steps"]] == [["wait"], ["send"]]

    await p.get_by_role("button", name="Archive").click()
    await expect(p.get_by_role("status")).to_contain_text("Archived Plain.")
    await page.nav("Flows")
    await expect(p.get_by_role("link", name="Plain")).to_have_count(0)
    await p.get_by_role("link", name="Archived flows").click()
    await expect(p.get_by_role("link", name="Plain")).to_be_visible()


async def test_a_mistake_inside_a_branchs_arm_is_said_beside_its_field(page: Watched, system: Crmd):
    page.allowed.append(r"status of 422 \\(")
    p = page.page
    await page.sign_in("arms@example.com")
    await page.go("/flows/new")
    await p.get_by_label("Name", exact=True).fill("Arms")
    await p.get_by_label("Event name", exact=True).fill("signup")
    await kind(page, "Step 1", "Branch on a rule")
    await p.get_by_label("Step 1: If this rule holds", exact=True).fill("spend > 10")
    await p.get_by_role("button", name="Add a step to step 1 if yes").click()
    await p.get_by_label("Step 1, if yes: step 1: Wait for", exact=True).fill("forever")
    await p.get_by_role("button", name="Add a step to step 1 if yes").click()
    await kind(page, "Step 1, if yes: step 2", "Exit")
    await p.get_by_role("button", name="Save draft").click()
    nested = p.locator("#step-0-yes-0-wait-error")
    await expect(nested).to_contain_text("'forever' is not a duration")
    await expect(p.locator("#step-0-yes-0 .field-error")).to_have_count(1)
    await expect(p.locator("#problem")).to_contain_text("Step 1, if yes: step 1, wait for:")

    await p.get_by_label("Step 1, if yes: step 1: Wait for", exact=True).fill("3d")
    await p.get_by_label("Step 1: If this rule holds", exact=True).fill("spend >> 10")
    await p.get_by_role("button", name="Save draft").click()
    said = p.locator("#step-0-rule-error")
    await expect(said).to_contain_text("column 8")
    await expect(said.locator("mark")).to_have_text(">")
    await page.shot("rule-error")
    assert await system.db.flows.count_documents({}) == 0

    await p.get_by_label("Step 1: If this rule holds", exact=True).fill("spend > 10")
    await p.get_by_role("button", name="Save draft").click()
    await expect(p.get_by_role("status")).to_contain_text("Arms is saved as a draft.")
    await expect(p.locator("tr[data-path='0.yes.1']")).to_contain_text("exit the flow")
