"""What the messages did, in the browser: a campaign's page shows its bounces,
complaints, opens and clicks with their rates, the opens-and-clicks chart and the table
of its links, at a desktop's width and a phone's; a campaign that tracks nothing shows
neither chart nor links; a customer's page tells what each of their messages did."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from playwright.async_api import Browser, expect

from crmd.app import Crmd
from crmd.campaigns import stats
from crmd.messages import message_id
from crmd.store.tenant import TenantStore
from tests.console.conftest import Watched, folder_for, watched
from tests.console.seed import sign_in_api
from tests.console.test_layout import overflow, wider
from tests.ingest.conftest import upload, wait_done

EMAIL = "engaged@example.com"
START = datetime.now(UTC) - timedelta(days=2)
LINKS = [
    "https://shop.example/sale?utm_source=crmd&utm_campaign=a-very-long-campaign-name",
    "https://shop.example/faq",
]


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


FINISHED = at(60)
STORIES = [  # what each of the five customers' messages did
    {
        "status": "CLICKED",
        "times": {"SENT": at(0), "DELIVERED": at(1), "OPENED": at(5), "CLICKED": at(7)},
        "opens": 2,
        "clicks": {"0": 3, "1": 1},
    },
    {
        "status": "OPENED",
        "times": {"SENT": at(0), "DELIVERED": at(1), "OPENED": at(20)},
        "opens": 1,
    },
    {"status": "DELIVERED", "times": {"SENT": at(0), "DELIVERED": at(2)}, "machineOpens": 1},
    {
        "status": "COMPLAINED",
        "times": {"SENT": at(0), "DELIVERED": at(2), "OPENED": at(30), "COMPLAINED": at(31)},
        "opens": 1,
    },
    {"status": "BOUNCED", "times": {"SENT": at(0), "SOFT_BOUNCED": at(3), "BOUNCED": at(60)}},
]


async def sent_campaign(
    client: Any,
    system: Crmd,
    headers: dict[str, str],
    name: str,
    links: list[str],
    stories: list[dict[str, Any]] = STORIES,
    completed: datetime = FINISHED,
) -> str:
    """A campaign to every customer, ``completed`` (two days ago), whose messages did
    what ``stories`` say (written straight into their logs, as the trackers would)."""
    made = await client.post(
        "/api/v1/campaigns",
        json={"name": name, "rule": "spend > 0", "message": "Hi {name}", "draft": True},
        headers=headers,
    )
    campaign = (await made.json())["id"]
    listed = await (await client.get("/api/v1/customers", headers=headers)).json()
    people = sorted(listed["items"], key=lambda c: c["customer_external_id"])
    doc = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
    store = TenantStore(system.db, doc["userId"])
    await store["communication_log"].insert_many(
        [
            {
                **story,
                "_id": message_id(campaign, person["id"]),
                "seq": n + 1,
                "customerId": person["id"],
                "recipient": person["email"],
                "message": f"Hi {person['name']}",
                "campaignId": campaign,
                "updatedAt": at(60),
            }
            for n, (person, story) in enumerate(zip(people, stories, strict=True))
        ]
    )
    await system.db.campaigns.update_one(
        {"_id": ObjectId(campaign)},
        {
            "$set": {
                "status": "completed",
                "links": links,
                "lastSeq": len(stories),
                "audienceSize": len(stories),
                "plannedAt": START,
                "sentAt": START,
                "completedAt": completed,
            }
        },
    )
    await stats.refresh(store, campaign)
    return campaign


async def figure(page: Watched, key: str) -> str:
    return await page.page.locator(f'[data-figure="{key}"]').inner_text()


async def customers(client: Any, headers: dict[str, str], count: int) -> None:
    text = "customer_external_id,name,email,spend\n" + "".join(
        f"E{i},Person {i},person{i}@example.com,{i}\n" for i in range(1, count + 1)
    )
    uploaded = await (await upload(client, headers, "customers", text)).json()
    await wait_done(client, headers, uploaded["uploadId"])


async def test_a_campaigns_page_and_a_customers_page_show_what_the_messages_did(
    client: Any, system: Crmd, browser: Browser, served: str, request: Any
):
    headers = await sign_in_api(client, EMAIL)
    await customers(client, headers, len(STORIES))
    tracked = await sent_campaign(client, system, headers, "Tracked", LINKS)
    plain = await sent_campaign(client, system, headers, "Plain", [])
    await system.db.communication_log.update_many(  # nothing opened or clicked in it
        {"campaignId": plain},
        {"$unset": {"times.OPENED": "", "times.CLICKED": "", "clicks": ""}},
    )
    doc = await system.db.campaigns.find_one({"_id": ObjectId(plain)})
    await stats.refresh(TenantStore(system.db, doc["userId"]), plain)
    folder = folder_for(request)

    for width in (1280, 390):
        page = await watched(browser, served, folder, viewport={"width": width, "height": 844})
        await page.sign_in(EMAIL)
        await page.go(f"/campaigns/{tracked}")
        p = page.page
        done = p.get_by_role("region", name="What the messages did")
        await expect(done).to_be_visible()
        shown = {
            key: await figure(page, key)
            for key in (
                "bouncedHard",
                "bouncedSoft",
                "complained",
                "openedPeople",
                "openedMachine",
                "clicked",
                "clicks",
                "openRate",
                "clickRate",
                "complaintRate",
                "bounceRate",
            )
        }
        assert shown == {
            "bouncedHard": "1",
            "bouncedSoft": "0",  # its soft bounce came before the hard one
            "complained": "1",
            "openedPeople": "3",
            "openedMachine": "1",
            "clicked": "1",
            "clicks": "4",
            "openRate": "75.0%",  # of the four delivered
            "clickRate": "25.0%",
            "complaintRate": "25.0%",
            "bounceRate": "20.0%",  # of the five handed over
        }
        chart = p.locator("[data-chart-engagement] svg")
        label = await chart.get_attribute("aria-label") or ""
        assert "3 opened, 1 clicked, of 4 delivered" in label, label
        rows = p.get_by_role("region", name="Links").locator("tbody tr")
        await expect(rows).to_have_count(2)
        assert await rows.nth(0).locator("td").all_inner_texts() == [LINKS[0], "1", "3", "75.0%"]
        assert await rows.nth(1).locator("td").all_inner_texts() == [LINKS[1], "1", "1", "25.0%"]
        await page.shot(f"{width}-tracked")
        await p.get_by_role("region", name="Links").screenshot(path=folder / f"{width}-links.png")
        assert await overflow(page) <= width, await wider(page, width)

        await page.go(f"/campaigns/{plain}")
        await expect(p.get_by_role("region", name="What the messages did")).to_be_visible()
        assert await figure(page, "openRate") == "0.0%"
        await expect(p.get_by_role("region", name="Links")).to_have_count(0)
        await expect(p.locator("[data-chart-engagement]")).to_have_count(0)
        await page.shot(f"{width}-plain")

        people = await (await client.get("/api/v1/customers", headers=headers)).json()
        first = next(c for c in people["items"] if c["customer_external_id"] == "E1")
        await page.go(f"/customers/{first['id']}")
        messages = p.get_by_role("region", name="Messages sent")
        row = messages.locator("tbody tr").filter(has_text="Tracked")
        steps = await row.locator("ol.steps li").all_inner_texts()
        said = [s.split(" ", 1)[0] if s[0] != "O" else s.split(" (")[0] for s in steps]
        assert said == ["Handed", "Delivered", "Opened", "Clicked"], steps
        assert "(2 times)" in steps[2] and "(4 clicks)" in steps[3], steps
        await page.shot(f"{width}-customer")
        assert await overflow(page) <= width, await wider(page, width)
        assert not page.unexpected(), page.unexpected()
        await page.page.context.close()


async def test_the_figures_of_what_the_messages_did_follow_the_logs_live(
    client: Any, system: Crmd, page: Watched
):
    headers = await sign_in_api(client, EMAIL)
    await customers(client, headers, len(STORIES) + 1)
    awaiting = {"status": "SENT", "times": {"SENT": at(0)}}  # a receipt still to come
    campaign = await sent_campaign(
        client, system, headers, "Live", LINKS, [*STORIES, awaiting], datetime.now(UTC)
    )
    await page.sign_in(EMAIL)
    await page.go(f"/campaigns/{campaign}")
    await expect(page.page.locator('[data-figure="clicked"]')).to_have_text("1")
    # The last recipient opens and clicks the second link twice: the trackers' writes.
    doc = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
    store = TenantStore(system.db, doc["userId"])
    await store["communication_log"].update_one(
        {"campaignId": campaign, "status": "SENT"},
        {
            "$set": {
                "status": "CLICKED",
                "times.DELIVERED": at(70),
                "times.OPENED": at(71),
                "times.CLICKED": at(72),
                "opens": 1,
                "clicks": {"1": 2},
            }
        },
    )
    await stats.refresh(store, campaign)
    live = page.page.get_by_role("region", name="What the messages did")
    await expect(live.locator('[data-figure="clicked"]')).to_have_text("2", timeout=15_000)
    await expect(live.locator('[data-figure="clicks"]')).to_have_text("6")
    await expect(live.locator('[data-figure="clickRate"]')).to_have_text("40.0%")  # 2 of 5
    await expect(live.locator('[data-figure="openRate"]')).to_have_text("80.0%")
    label = live.locator("[data-chart-engagement] svg")
    await expect(label).to_have_attribute("aria-label", re.compile("4 opened, 2 clicked"))
    await page.shot("followed")
