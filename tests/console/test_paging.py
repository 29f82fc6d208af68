"""The console's lists page through everything, newest first, with no record twice and
none left out, with and without a filter; a filtered page reads a bounded stretch and
says how far it looked."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from crmd.app import Crmd
from tests.console.test_security import signed_in
from tests.ingest.conftest import upload, wait_done

ROWS = 130


def names_on(html: str) -> list[str]:
    return re.findall(r'<a href="/customers/[0-9a-f]{24}">([^<]+)</a>', html)


def older_link(html: str) -> str | None:
    """The next page's address: by number unfiltered, from where it stopped filtered."""
    found = re.search(r'<a href="(/customers[^"]*)" rel="next">(Older|Next)</a>', html)
    return found.group(1).replace("&amp;", "&") if found else None


async def every_page(client: Any, path: str) -> list[list[str]]:
    pages = []
    while path:
        answer = await client.get(path)
        assert answer.status == 200, path
        html = await answer.text()
        pages.append(names_on(html))
        path = older_link(html) or ""
    return pages


async def test_customers_page_through_all_and_a_rule_filters_them(
    client: Any, auth: Any, ingesting: Any
):
    text = "customer_external_id,name,email,spend\n" + "".join(
        f"P{i},Person {i:03d},p{i}@example.com,{i * 10}\n" for i in range(1, ROWS + 1)
    )
    await wait_done(
        client, auth, (await (await upload(client, auth, "customers", text)).json())["uploadId"]
    )
    await signed_in(client)
    pages = await every_page(client, "/customers")
    assert [len(p) for p in pages] == [50, 50, 30]
    shown = [name for page in pages for name in page]
    assert shown == [f"Person {i:03d}" for i in range(ROWS, 0, -1)]  # newest first, all once
    html = await (await client.get("/customers?page=2")).text()
    assert f"51\u2013100 of {ROWS} customers" in html
    assert names_on(html) == [f"Person {i:03d}" for i in range(80, 30, -1)]
    numbers = re.findall(r'<a (?:aria-current="page" )?href="/customers\?page=([0-9]+)"', html)
    assert numbers == ["1", "1", "2", "3", "3"]  # previous, 1, 2 (this one), 3, next
    assert (await client.get("/customers?page=4")).status == 400

    pages = await every_page(
        client, "/customers?rule=spend%20%3E%3D%201000%20AND%20spend%20%3C%201200"
    )
    shown = [name for page in pages for name in page]
    assert shown == [f"Person {i:03d}" for i in range(119, 99, -1)]
    html = await (await client.get("/customers?rule=spend%20%3E%201200")).text()
    assert re.search(r"[0-9]+ matching, among [0-9,]+ customers looked at", html)


async def test_a_campaigns_log_filters_by_status_and_pages(
    client: Any, auth: Any, delivering: Crmd, system: Crmd
):
    text = "customer_external_id,name,email\n" + "".join(
        f"L{i},Log {i},l{i}@example.com\n" for i in range(1, ROWS + 1)
    )
    await wait_done(
        client, auth, (await (await upload(client, auth, "customers", text)).json())["uploadId"]
    )
    created = await client.post(
        "/api/v1/campaigns",
        json={"name": "Paged", "rule": "visits >= 0 OR visits < 0 OR name != ''", "message": "Hi"},
        headers=auth,
    )
    assert created.status == 201, await created.text()
    campaign = (await created.json())["id"]
    async with asyncio.timeout(30):
        while (await (await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)).json())[
            "stats"
        ]["pending"]:
            await asyncio.sleep(0.2)
    await signed_in(client)
    failed = await system.db.communication_log.count_documents(
        {"campaignId": campaign, "status": "FAILED"}
    )
    assert 0 < failed < ROWS
    html = await (await client.get(f"/campaigns/{campaign}?status=FAILED")).text()
    statuses = re.findall(r'class="status status-([a-z]+)">', html.split("Recipients")[1])
    assert statuses == ["failed"] * failed
    assert f"{failed} failed, among {ROWS:,} recipients looked at" in html
    seen: list[str] = []
    path = f"/campaigns/{campaign}"
    while path:
        html = await (await client.get(path)).text()
        seen += re.findall(
            r'<td class="recipient"><a href="/customers/[0-9a-f]{24}">([^<]+)</a></td>', html
        )
        nxt = re.search(
            r'<a href="(/campaigns/[0-9a-f]{24}\?page=[0-9]+)" rel="next">Next</a>', html
        )
        path = nxt.group(1) if nxt else ""
    assert sorted(seen) == sorted(f"l{i}@example.com" for i in range(1, ROWS + 1))
