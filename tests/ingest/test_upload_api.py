"""Uploads end to end: HTTP, the ingest stream, the ingest actor, MongoDB."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import pytest

from crmd.app import Crmd
from tests.ingest.conftest import CUSTOMERS, ORDERS, upload, wait_done

pytestmark = pytest.mark.usefixtures("ingesting")


async def customers_by_id(client: Any, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    body = await (await client.get("/api/v1/customers?limit=500", headers=auth)).json()
    return {c["customer_external_id"]: c for c in body["items"]}


async def test_original_formats_load_with_bad_rows_reported(client: Any, auth: Any):
    response = await upload(client, auth, "customers", CUSTOMERS, name="customers.csv")
    assert response.status == 202
    answer = await response.json()
    assert answer["status"] == "queued" and answer["number"] == 2
    assert answer["rows"] == {"received": 4, "valid": 2, "rejected": 2}
    job = await wait_done(client, auth, answer["uploadId"])
    assert job["status"] == "done" and job["rows"]["persisted"] == 2
    assert job["fileName"] == "customers.csv" and job["kind"] == "customers"
    assert [(e["line"], e["column"], e["code"]) for e in job["errors"]] == [
        (3, "email", "invalid_email"),
        (5, "lastActive", "invalid_date"),
    ]
    orders = await (await upload(client, auth, "orders", ORDERS, path="/api/v1/uploads/")).json()
    assert orders["rows"] == {"received": 4, "valid": 3, "rejected": 1}
    await wait_done(client, auth, orders["uploadId"])
    customers = await customers_by_id(client, auth)
    assert customers["C1"]["orderCount"] == 2 and customers["C1"]["orderTotal"] == 750.5
    assert customers["C1"]["lastOrderAt"].startswith("2024-06-01")
    assert customers["C3"]["orderCount"] == 1
    listed = await (await client.get("/api/v1/orders", headers=auth)).json()
    assert listed["total"] == 3


async def test_errors_csv_lists_every_rejected_row(client: Any, auth: Any):
    answer = await (await upload(client, auth, "customers", CUSTOMERS)).json()
    response = await client.get(f"/api/v1/uploads/{answer['uploadId']}/errors.csv", headers=auth)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == ["line", "column", "code", "message", "row"]
    assert [(r[0], r[2]) for r in rows[1:]] == [("3", "invalid_email"), ("5", "invalid_date")]
    assert rows[1][4] == "C2,Ravi,not-an-email,2024-05-01,Pune,,100,1"


async def test_reupload_changes_nothing(client: Any, auth: Any, system: Crmd):
    first = await (await upload(client, auth, "customers", CUSTOMERS)).json()
    await wait_done(client, auth, first["uploadId"])
    before = await customers_by_id(client, auth)
    second = await (await upload(client, auth, "customers", CUSTOMERS)).json()
    await wait_done(client, auth, second["uploadId"])
    after = await customers_by_id(client, auth)
    assert after.keys() == before.keys()
    stable = ("name", "email", "spend", "visits", "lastActive", "createdAt", "id")
    for key in before:
        assert {f: after[key][f] for f in stable} == {f: before[key][f] for f in stable}
    assert await system.db.customers.count_documents({}) == 2


async def test_orders_before_customers_still_add_up(client: Any, auth: Any):
    orders = await (await upload(client, auth, "orders", ORDERS)).json()
    await wait_done(client, auth, orders["uploadId"])
    customers = await (await upload(client, auth, "customers", CUSTOMERS)).json()
    await wait_done(client, auth, customers["uploadId"])
    again = await (await upload(client, auth, "orders", ORDERS)).json()
    await wait_done(client, auth, again["uploadId"])
    by_id = await customers_by_id(client, auth)
    assert (by_id["C1"]["orderCount"], by_id["C1"]["orderTotal"]) == (2, 750.5)


async def test_raw_csv_body_with_bom_and_crlf(client: Any, auth: Any):
    body = b"\xef\xbb\xbfname,email\r\nA,a@x.io\r\nB,b@x.io"
    response = await client.post(
        "/api/v1/upload/customers?filename=raw.csv",
        data=body,
        headers={**auth, "Content-Type": "text/csv"},
    )
    assert response.status == 202
    job = await wait_done(client, auth, (await response.json())["uploadId"])
    assert job["rows"]["persisted"] == 2 and job["fileName"] == "raw.csv"


async def test_explicit_mapping_as_a_form_field(client: Any, auth: Any):
    text = "Customer,Mail,Total Spent\nQ,q@x.io,700\n"
    mapping = '{"name": "Customer", "email": "Mail", "spend": "Total Spent"}'
    answer = await (await upload(client, auth, "customers", text, mapping=mapping)).json()
    await wait_done(client, auth, answer["uploadId"])
    items = (await (await client.get("/api/v1/customers", headers=auth)).json())["items"]
    assert items[0]["spend"] == 700


async def test_later_upload_wins_for_the_same_key(client: Any, auth: Any):
    old = "customer_external_id,name,email,spend\nK1,Old,k@x.io,1\n"
    new = "customer_external_id,name,email,spend\nK1,New,k@x.io,2\n"
    first = await (await upload(client, auth, "customers", old)).json()
    second = await (await upload(client, auth, "customers", new)).json()
    await wait_done(client, auth, first["uploadId"])
    await wait_done(client, auth, second["uploadId"])
    assert (await customers_by_id(client, auth))["K1"]["name"] == "New"


async def test_pagination_with_cursor(client: Any, auth: Any):
    rows = "name,email\n" + "".join(f"N{i},n{i}@x.io\n" for i in range(7))
    answer = await (await upload(client, auth, "customers", rows)).json()
    await wait_done(client, auth, answer["uploadId"])
    seen: list[str] = []
    url = "/api/v1/customers?limit=3"
    while url:
        page = await (await client.get(url, headers=auth)).json()
        assert page["total"] == 7
        seen += [c["email"] for c in page["items"]]
        url = f"/api/v1/customers?limit=3&cursor={page['cursor']}" if page["cursor"] else ""
    assert sorted(seen) == sorted(f"n{i}@x.io" for i in range(7))
    assert len(seen) == 7


async def test_racing_uploads_on_the_same_keys_end_as_the_later_one(
    client: Any, auth: Any, system: Crmd
):
    def file(tag: str) -> str:
        return "customer_external_id,name,email,spend\n" + "".join(
            f"R{i},{tag}{i},r{i}@x.io,{i}\n" for i in range(1100)
        )

    answers = await asyncio.gather(
        *(upload(client, auth, "customers", file(tag)) for tag in ("first", "second"))
    )
    ids = [(await a.json())["uploadId"] for a in answers]
    jobs = [await wait_done(client, auth, i, timeout=60) for i in ids]
    assert all(j["rows"]["persisted"] == 1100 for j in jobs)
    docs = {d["_id"]: d async for d in system.db.uploads.find({})}
    later = max(docs.values(), key=lambda d: (d["createdAt"], d["_id"]))
    names = [c["name"] async for c in system.db.customers.find({}, {"name": 1})]
    assert len(names) == 1100
    winners = {n.rstrip("0123456789") for n in names}
    assert len(winners) == 1  # every key from the same upload
    assert str(later["_id"]) in {c["uploadId"] async for c in system.db.customers.find({})}


async def test_another_crms_export_format_loads_end_to_end(client: Any, auth: Any):
    customers = (
        "Full Name,Email Address,Total-Spend,visit_count,Last Visit,Mobile,Loyalty Tier\n"
        'Zoe Park,ZOE@x.io,"2,000.75",3,2024-01-02T03:04:05Z,555,Gold\n'
        "Broken,broken@x.io,lots,1,2024-01-02,,\n"
    )
    orders = (
        "orderId,customerEmail,orderAmount,date,items\n"
        'A-1,zoe@x.io,99.5,2024-02-01,"[""hat"", ""scarf""]"\n'
        "A-2,zoe@x.io,0.5,2024-02-03T10:00:00+05:30,\n"
        "A-3,zoe@x.io,1,yesterday,\n"
    )
    first = await (await upload(client, auth, "customers", customers)).json()
    job = await wait_done(client, auth, first["uploadId"])
    assert [(e["line"], e["column"], e["code"]) for e in job["errors"]] == [
        (3, "Total-Spend", "not_a_number")
    ]
    second = await (await upload(client, auth, "orders", orders)).json()
    job = await wait_done(client, auth, second["uploadId"])
    assert [(e["line"], e["column"], e["code"]) for e in job["errors"]] == [
        (4, "date", "invalid_date")
    ]
    assert job["rows"]["persisted"] == job["rows"]["valid"] == 2
    [zoe] = (await (await client.get("/api/v1/customers", headers=auth)).json())["items"]
    assert (zoe["email"], zoe["spend"], zoe["phone"]) == ("zoe@x.io", 2000.75, "555")
    assert zoe["attrs"] == {"loyalty_tier": "Gold"}
    assert (zoe["orderCount"], zoe["orderTotal"]) == (2, 100.0)
    assert zoe["lastOrderAt"].startswith("2024-02-03T04:30:00")


async def test_errors_csv_cells_cannot_be_formulas(client: Any, auth: Any):
    text = (
        'name,email,=HYPERLINK("http://evil")\n'
        "=cmd|' /C calc'!A0,not-an-email,x\n"
        "@SUM(A1:A9),also-bad,y\n"
        "+1+1,bad,z\n"
        "-2+3,bad,z\n"
        "\tTab,bad,z\n"
    )
    answer = await (await upload(client, auth, "customers", text)).json()
    assert answer["rows"]["rejected"] == 5
    body = await (
        await client.get(f"/api/v1/uploads/{answer['uploadId']}/errors.csv", headers=auth)
    ).text()
    rows = list(csv.reader(io.StringIO(body)))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert rows[1][4].startswith("'=cmd|")
    assert rows[2][4].startswith("'@SUM(")
    # A header that is a formula, named by the mapping: the column cell is made safe too.
    mapped = await (
        await upload(
            client, auth, "customers", "name,@evil\nA,nope\n", mapping='{"email": "@evil"}'
        )
    ).json()
    body = await (
        await client.get(f"/api/v1/uploads/{mapped['uploadId']}/errors.csv", headers=auth)
    ).text()
    [_, row] = list(csv.reader(io.StringIO(body)))
    assert row[1] == "'@evil"
