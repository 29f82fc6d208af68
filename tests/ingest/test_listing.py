"""Customers and orders listed page by page at the cost of a page: newest first, every
record once by following the cursor, the total from the tally (no count per page), a
rule's total counted once and carried in the cursor, offsets still honoured."""

from __future__ import annotations

from typing import Any

from crmd.app import Crmd
from crmd.store.windows import FILTERED_SCAN
from tests.counted import commands, read
from tests.ingest.conftest import upload, wait_done

ROWS = 130


async def load(client: Any, auth: Any) -> None:
    text = "customer_external_id,name,email,spend\n" + "".join(
        f"C{i},Person {i},p{i}@example.com,{i * 10}\n" for i in range(1, ROWS + 1)
    )
    answer = await (await upload(client, auth, "customers", text)).json()
    await wait_done(client, auth, answer["uploadId"])


async def every_page(client: Any, auth: Any, params: dict[str, str]) -> list[dict[str, Any]]:
    pages = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/api/v1/customers", params=query, headers=auth)
        assert answer.status == 200, await answer.text()
        page = await answer.json()
        pages.append(page)
        cursor = page["cursor"]
        if cursor is None:
            return pages


async def test_pages_follow_the_cursor_to_the_end_with_no_count(
    client: Any, auth: Any, ingesting: Any, system: Crmd
):
    await load(client, auth)
    await client.get("/api/v1/customers", params={"limit": "1"}, headers=auth)  # the tally
    before = commands(system)
    pages = await every_page(client, auth, {"limit": "50"})
    after = commands(system)
    assert [len(p["items"]) for p in pages] == [50, 50, 30]
    assert all(p["total"] == ROWS for p in pages)
    names = [c["name"] for p in pages for c in p["items"]]
    assert names == [f"Person {i}" for i in range(ROWS, 0, -1)]
    assert after.get("aggregate", 0) == before.get("aggregate", 0)  # no count on any page
    assert after.get("count", 0) == before.get("count", 0)
    assert all("n" not in c and "userId" not in c and c["id"] for p in pages for c in p["items"])
    # An offset is still an offset.
    shifted = await (
        await client.get("/api/v1/customers", params={"offset": "120", "limit": "50"}, headers=auth)
    ).json()
    assert [c["name"] for c in shifted["items"]] == [f"Person {i}" for i in range(10, 0, -1)]
    assert shifted["cursor"] is None


async def test_a_rule_is_counted_once_and_its_pages_hold_every_match(
    client: Any, auth: Any, ingesting: Any, system: Crmd
):
    await load(client, auth)
    rule = {"rule": "spend > 300 AND spend <= 1100", "limit": "25"}
    pages = await every_page(client, auth, rule)
    names = sorted(c["name"] for p in pages for c in p["items"])
    assert names == sorted(f"Person {i}" for i in range(31, 111))
    assert all(p["total"] == 80 for p in pages)
    assert all(len(p["items"]) <= 25 for p in pages)
    # A later page carries the total; total=exact counts it again.
    second = pages[1]
    assert second["total"] == 80
    exact = await (
        await client.get(
            "/api/v1/customers",
            params={**rule, "cursor": pages[0]["cursor"], "total": "exact"},
            headers=auth,
        )
    ).json()
    assert exact["total"] == 80 and exact["items"] == second["items"]
    offset = await (
        await client.get(
            "/api/v1/customers", params={**rule, "offset": "70", "limit": "50"}, headers=auth
        )
    ).json()
    assert [c["name"] for c in offset["items"]] == [f"Person {i}" for i in range(40, 30, -1)]


async def test_a_cursor_not_given_out_is_400(client: Any, auth: Any):
    for cursor in ("abc", "1.2.3", "-5", "9" * 40, "12.x"):
        answer = await client.get("/api/v1/orders", params={"cursor": cursor}, headers=auth)
        assert answer.status == 400, cursor
        assert (await answer.json())["error"]["details"] == {"field": "cursor"}


async def test_a_filtered_page_reads_at_most_its_bound_and_says_where_to_go_on(
    client: Any, auth: Any, ingesting: Any, system: Crmd
):
    """Matches only among the oldest: the first page holds none of them but a cursor,
    after reading FILTERED_SCAN records, not all of them."""
    rows = FILTERED_SCAN + 100
    text = "customer_external_id,name,email,spend\n" + "".join(
        f"F{i},Person {i},f{i}@example.com,{5000 if i <= 10 else 1}\n" for i in range(1, rows + 1)
    )
    answer = await (await upload(client, auth, "customers", text)).json()
    await wait_done(client, auth, answer["uploadId"])
    rule = {"rule": "spend > 1000", "limit": "50"}
    before = read(system, "GET /api/v1/customers", "customers")
    first = await (await client.get("/api/v1/customers", params=rule, headers=auth)).json()
    assert first["items"] == [] and first["cursor"] is not None
    assert read(system, "GET /api/v1/customers", "customers") - before <= FILTERED_SCAN + 1
    pages = await every_page(client, auth, rule)
    names = [c["name"] for p in pages for c in p["items"]]
    assert names == [f"Person {i}" for i in range(10, 0, -1)]


async def test_a_total_carried_in_a_cursor_holds_for_its_own_rule_only(
    client: Any, auth: Any, ingesting: Any, system: Crmd
):
    """The probe's cursor from ``spend > 1`` reused with another rule said the first
    rule's total; one made up said what it was told."""
    await load(client, auth)

    async def first(rule: str, **more: str) -> dict[str, Any]:
        params = {"rule": rule, "limit": "10", **more}
        answer = await client.get("/api/v1/customers", params=params, headers=auth)
        assert answer.status == 200, await answer.text()
        return await answer.json()  # type: ignore[no-any-return]

    broad = await first("spend > 1")
    assert broad["total"] == ROWS
    reused = await first("spend > 1200", cursor=broad["cursor"])
    assert reused["total"] == ROWS - 120
    made_up = await first("spend > 1", cursor=broad["cursor"].split(".")[0] + ".999999")
    assert made_up["total"] == ROWS
    following = await first("spend > 1", cursor=broad["cursor"])
    assert following["total"] == ROWS


async def test_a_deep_offset_is_an_expensive_read(client: Any, auth: Any, system: Crmd):
    def waits() -> float:
        return sum(
            s.value
            for m in system.metrics.read_wait.collect()
            for s in m.samples
            if s.name.endswith("_count")
        )

    before = waits()
    shallow = await client.get("/api/v1/customers", params={"offset": "10"}, headers=auth)
    assert shallow.status == 200 and waits() == before
    deep = await client.get("/api/v1/customers", params={"offset": "100000"}, headers=auth)
    assert deep.status == 200 and waits() == before + 1
