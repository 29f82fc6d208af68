"""The console's audit page: the API's filters as a form (a bad one said beside the
form, 422), newest first with "Older" and "Newest" links, a CSV download of what the
filters match, a navigation link only for those who may manage; in Chromium at a
desktop's width and a phone's."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bson import ObjectId
from playwright.async_api import Browser, expect

from crmd.app import Crmd
from crmd.console.workspace import WORKSPACE_COOKIE
from crmd.store.tenant import TenantStore
from crmd.workspaces.members import add_member
from tests.console.conftest import folder_for, watched
from tests.console.test_layout import overflow, wider
from tests.console.test_security import signed_in


async def user_of(system: Crmd, email: str) -> str:
    doc = await system.db.users.find_one({"email": email})
    assert doc is not None
    return str(doc["_id"])


async def fill_log(system: Crmd, workspace: str, count: int) -> datetime:
    """``count`` campaign entries a minute apart, the newest first made, a minute before
    the time returned; one in three refused, and one named like a formula."""
    now = datetime.now(UTC).replace(microsecond=0)
    docs = [
        {
            "_id": ObjectId(),
            "at": now - timedelta(minutes=i + 1),
            "action": "campaign.sent" if i % 3 else "segment.saved",
            "outcome": "refused" if i % 3 == 1 else "done",
            "by": {"userId": "u1", "email": f"person{i % 2}@example.com"},
            "from": "10.0.0.7",
            "objectId": "=SUM(A1)" if i == 0 else f"{i:024x}",
            "fields": ["name", "rule"],
            **({"reason": "this needs the 'send' permission"} if i % 3 == 1 else {}),
        }
        for i in range(count)
    ]
    await TenantStore(system.db, workspace)["audit"].insert_many(docs)
    return now


async def test_the_page_filters_pages_and_downloads(client: Any, system: Crmd) -> None:
    await signed_in(client, "owner@example.com")
    me = await user_of(system, "owner@example.com")
    now = await fill_log(system, me, 60)
    html = await (await client.get("/")).text()
    assert '<a href="/audit">Audit</a>' in html
    first = await client.get("/audit")
    html = await first.text()
    assert first.status == 200 and html.count("<tr>") == 1 + 50
    older = re.search(r'<a href="(/audit\?cursor=[^"]+)" rel="next">Older</a>', html)
    assert older and "Newest" not in html
    html = await (await client.get(older[1].replace("&amp;", "&"))).text()
    assert html.count("<tr>") == 1 + 10 and '<a href="/audit">Newest</a>' in html
    assert 'rel="next"' not in html
    # Filters, kept in the download link and the next page's.
    html = await (await client.get("/audit?action=campaign.&outcome=refused&who=")).text()
    assert html.count("<strong>refused</strong>") == 20 and "segment.saved</code>" not in html
    link = re.search(r'<a href="(/audit\.csv[^"]*)" download>Download CSV</a>', html)
    assert link and link[1] == "/audit.csv?action=campaign.&amp;outcome=refused"
    download = await client.get(link[1].replace("&amp;", "&"))
    assert download.status == 200
    rows = list(csv.reader(io.StringIO(await download.text())))
    assert len(rows) == 21 and {r[2] for r in rows[1:]} == {"refused"}
    everything = await (await client.get("/audit.csv")).text()
    assert "'=SUM(A1)" in everything and len(everything.splitlines()) == 61
    # A bad filter: the form again, saying what is wrong beside it.
    bad = await client.get("/audit?since=yesterday&action=segment.")
    html = await bad.text()
    assert bad.status == 422 and "since must be an ISO 8601 time" in html
    assert 'id="f-since" name="since"' in html and 'value="segment."' in html
    # A form's minute is a time (UTC); a day alone is its midnight.
    at = (now - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M")  # after the third newest
    html = await (await client.get(f"/audit?since={at}")).text()
    assert html.count("<tr>") == 1 + 2
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert (await client.get(f"/audit.csv?until={day}")).status == 200


async def test_only_those_who_manage_see_the_page(client: Any, system: Crmd) -> None:
    await signed_in(client, "owner@example.com")
    workspace = await user_of(system, "owner@example.com")
    await fill_log(system, workspace, 3)
    client.session.cookie_jar.clear()
    await signed_in(client, "editor@example.com")
    editor = await user_of(system, "editor@example.com")
    await add_member(system.web_db, workspace, editor, "editor@example.com", "editor")
    client.session.cookie_jar.update_cookies({WORKSPACE_COOKIE: workspace})
    html = await (await client.get("/")).text()
    assert 'href="/customers"' in html and 'href="/audit"' not in html
    for path in ("/audit", "/audit.csv"):
        answer = await client.get(path)
        assert answer.status == 403, path
        assert "manage" in await answer.text()


async def test_the_audit_page_in_a_browser_at_1280_and_390(
    browser: Browser, served: str, system: Crmd, request: Any
) -> None:
    folder = folder_for(request)
    for width in (1280, 390):
        page = await watched(browser, served, folder, viewport={"width": width, "height": 844})
        p = page.page
        await page.sign_in(f"w{width}@example.com")
        await fill_log(system, await user_of(system, f"w{width}@example.com"), 60)
        if width < 1000:
            await p.get_by_text("Menu", exact=True).click()
        await page.nav("Audit")
        await expect(p.get_by_role("heading", name="Audit log")).to_be_visible()
        rows = p.locator("table tbody tr")
        await expect(rows).to_have_count(50)
        await page.shot(f"{width}-audit")
        assert await overflow(page) <= width, await wider(page, width)
        await p.get_by_role("link", name="Older").click()
        await expect(rows).to_have_count(10)
        await p.get_by_role("link", name="Newest").click()
        await expect(rows).to_have_count(50)
        await p.get_by_label("Action", exact=True).fill("campaign.")
        await p.get_by_label("Outcome", exact=True).select_option("refused")
        await p.get_by_role("button", name="Filter").click()
        await expect(rows).to_have_count(20)
        await expect(p.get_by_label("Action", exact=True)).to_have_value("campaign.")
        await page.shot(f"{width}-filtered")
        assert await overflow(page) <= width, await wider(page, width)
        async with p.expect_download() as waiting:
            await p.get_by_role("link", name="Download CSV").click()
        download = await waiting.value
        text = Path(await download.path()).read_text(encoding="utf-8")
        assert text.startswith("at,action,outcome,by,from,objectId,fields,reason")
        assert len(text.splitlines()) == 21
        await p.get_by_label("Since (UTC)", exact=True).fill("2026-01-01T00:00:00")
        await p.get_by_label("Until (UTC)", exact=True).fill("2025-01-01T00:00:00")
        page.allowed.append(r"status of 422 \(")
        await p.get_by_role("button", name="Filter").click()
        await expect(p.get_by_role("alert")).to_contain_text("since must be before until")
        await page.shot(f"{width}-refused")
        assert not page.unexpected(), page.unexpected()
        await p.context.close()
