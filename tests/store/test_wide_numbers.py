"""Every number crmd accepts reads back exactly, wherever it is read.

A whole number beyond 32 bits is stored as a BSON 64-bit integer, which pymongo hands
back as ``bson.int64.Int64`` unless the client is told otherwise; msgspec encodes no such
type, so a customer with 2,147,483,648 visits once made the API's lists, previews and
test sends answer 500. The values below are the edges of every numeric field a customer
or an order has, imported through the real upload route and read back through the API,
a test send and the console."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from crmd.app import Crmd
from tests.console.test_security import signed_in
from tests.ingest.conftest import upload, wait_done


async def counted(client: Any, auth: Any, rule: str) -> dict[str, Any]:
    """The rule's preview once counted: asked again while it answers 202 (still
    counting), as a client does; a loaded machine may take longer than one wait."""
    for _ in range(120):
        answer = await client.post("/api/v1/segments/preview", headers=auth, json={"rule": rule})
        if answer.status != 202:
            break
        await asyncio.sleep(0.5)
    assert answer.status == 200, await answer.text()
    preview: dict[str, Any] = await answer.json()
    return preview


INT32 = 2**31 - 1
SAFE = 2**53 - 1
WHOLE = [INT32, INT32 + 1, INT32 + 2, SAFE]
"""2^31 - 1, 2^31, 2^31 + 1 and 2^53 - 1: spend, visits and amounts are never negative."""
NEGATIVE = [-(INT32 + 2), -SAFE]
"""-2^31 - 1 and -(2^53 - 1): custom columns may be negative."""


def attr_read_back(value: int) -> float | str:
    """A custom column keeps a number of at most 15 digits as a number, longer ones
    as the text written (docs/importing.md, "Values crmd can keep")."""
    return float(value) if len(str(abs(value))) <= 15 else str(value)


def money(value: int) -> str:
    """As the console shows it in its default currency (``[console] currency``, INR)."""
    return f"₹{value:,}.00"


async def imported(client: Any, auth: Any) -> None:
    customers = "name,email,spend,visits,score\n" + "".join(
        f"W{v},w{v}@x.io,{v},{v},{v}\n" for v in WHOLE
    )
    customers += "".join(f"N{-v},n{-v}@x.io,1,1,{v}\n" for v in NEGATIVE)
    orders = "customerEmail,amount,orderDate,order_external_id\n" + "".join(
        f"w{v}@x.io,{v},2024-05-01,O{v}\n" for v in WHOLE
    )
    for kind, text in (("customers", customers), ("orders", orders)):
        answer = await (await upload(client, auth, kind, text)).json()
        job = await wait_done(client, auth, answer["uploadId"])
        assert job["rows"]["rejected"] == 0 and job["rows"]["persisted"] > 0, job


def assert_customer(item: dict[str, Any], value: int) -> None:
    assert item["email"] == f"w{value}@x.io"
    assert item["visits"] == value and isinstance(item["visits"], int)
    assert item["spend"] == value
    assert item["attrs"]["score"] == attr_read_back(value)
    assert item["orderCount"] == 1 and item["orderTotal"] == value


async def test_a_client_reads_a_64_bit_integer_as_a_plain_int(system: Crmd):
    await system.db.wide.insert_one(
        {"_id": 1, "n": SAFE, "list": [INT32 + 1], "deep": {"n": -SAFE}}
    )
    found = await system.db.wide.find_one({"_id": 1})
    assert found == {"_id": 1, "n": SAFE, "list": [INT32 + 1], "deep": {"n": -SAFE}}
    assert type(found["n"]) is int and type(found["list"][0]) is int
    assert type(found["deep"]["n"]) is int


@pytest.mark.usefixtures("delivering")
async def test_numbers_beyond_32_bits_read_back_exactly_everywhere(client: Any, auth: Any):
    await imported(client, auth)

    answer = await client.get("/api/v1/customers?limit=500", headers=auth)
    assert answer.status == 200, await answer.text()
    by_email = {c["email"]: c for c in (await answer.json())["items"]}
    for value in WHOLE:
        assert_customer(by_email[f"w{value}@x.io"], value)
    for value in NEGATIVE:
        assert by_email[f"n{-value}@x.io"]["attrs"]["score"] == attr_read_back(value)

    answer = await client.get(f"/api/v1/customers?rule=visits > {INT32}", headers=auth)
    assert answer.status == 200, await answer.text()
    assert sorted(c["visits"] for c in (await answer.json())["items"]) == WHOLE[1:]

    answer = await client.get("/api/v1/orders?limit=500", headers=auth)
    assert answer.status == 200, await answer.text()
    amounts = sorted(o["amount"] for o in (await answer.json())["items"])
    assert amounts == WHOLE

    preview = await counted(client, auth, f"visits >= {INT32}")
    assert preview["audienceSize"] == len(WHOLE)
    for item in preview["sample"]:
        assert_customer(item, item["visits"])
    # (The rule language has no negative numbers: the negative rows are the ones with
    # a single visit.)
    scores = [c["attrs"]["score"] for c in (await counted(client, auth, "visits = 1"))["sample"]]
    assert sorted(scores, key=str) == sorted(map(attr_read_back, NEGATIVE), key=str)

    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={
            "name": "Wide",
            "message": "{visits} {spend} {attrs.score}",
            "rule": "visits > 1",
            "draft": True,
        },
    )
    assert made.status == 201, await made.text()
    sent = await client.post(
        f"/api/v1/campaigns/{(await made.json())['id']}/test",
        headers=auth,
        json={"email": f"w{SAFE}@x.io"},
    )
    assert sent.status == 200, await sent.text()
    text = (await sent.json())["message"].partition("\n\n")[0]
    assert text == "9,007,199,254,740,991 9,007,199,254,740,991 9007199254740991"

    await signed_in(client)
    page = await client.get("/customers")
    assert page.status == 200
    html = await page.text()
    for value in WHOLE:
        assert f'<td class="num">{value}</td>' in html and money(value) in html
    link = re.search(rf'href="/customers/([0-9a-f]+)">W{SAFE}<', html)
    assert link, html
    page = await client.get(f"/customers/{link[1]}")
    assert page.status == 200
    html = await page.text()
    assert f"<dt>Visits</dt><dd>{SAFE}</dd>" in html
    assert f"<dt>Orders</dt><dd>1 ({money(SAFE)})</dd>" in html
    assert f'<dt>Score <code class="muted">attrs.score</code></dt><dd>{SAFE}</dd>' in html
    page = await client.get("/orders")
    assert page.status == 200
    html = await page.text()
    assert all(money(value) in html for value in WHOLE)
