"""Segments over HTTP, on customers loaded through the real import path."""

from __future__ import annotations

from typing import Any

import pytest

from crmd.app import Crmd
from crmd.segments.evaluate import evaluate
from crmd.segments.parse import parse_rule
from crmd.segments.query import rule_now
from tests.ingest.conftest import upload, wait_done

pytestmark = pytest.mark.usefixtures("ingesting")

CUSTOMERS = (
    "customer_external_id,name,email,lastActive,location,phone,spend,visits,tier,points\n"
    "C1,Asha,asha@x.io,{recent},Delhi,999,12000.50,2,gold,120\n"
    "C2,Ravi,ravi@x.io,{old},Pune,,15000,1,silver,10\n"
    "C3,Meera,meera@x.io,{old},Mumbai,,300,9,,\n"
    "C4,Anil,anil@x.io,{recent},delhi,,100.5,3,Gold,50\n"
    "C5,Zoe,zoe@x.io,,New Delhi,555,100,0,,\n"
    "C6,Om,om@x.io,{mid},Pune,,10000,2,gold,abc\n"
)
EXAMPLES = [
    "spend > 10000 AND visits < 3",
    "spend > 10000 AND visits < 3 OR lastActive < 90d",
    "spend > 100.5",
    "spend >= 10,000",
    "spend > INR 10000",
    "spend > ₹10_000",
    "lastActive < 90d",
    "lastActive > 7d",
    "inactive_days > 90",
    'location = "delhi"',
    'location != "Delhi"',
    'location in ("Delhi", "Pune")',
    'name contains "a"',
    'email startswith "A"',
    'email endswith "x.io"',
    "exists attrs.tier",
    'attrs.tier = "GOLD"',
    "attrs.points > 40",
    "NOT exists phone",
    "orderCount = 0 OR orderCount > 0",
]


@pytest.fixture
async def loaded(client: Any, auth: Any, system: Crmd) -> list[dict[str, Any]]:
    from datetime import timedelta

    now = rule_now()
    text = CUSTOMERS.format(
        recent=(now - timedelta(days=2)).date().isoformat(),
        old=(now - timedelta(days=200)).date().isoformat(),
        mid=(now - timedelta(days=30)).date().isoformat(),
    )
    answer = await (await upload(client, auth, "customers", text)).json()
    job = await wait_done(client, auth, answer["uploadId"])
    assert job["rows"]["persisted"] == 6
    return [d async for d in system.db.customers.find({})]


@pytest.mark.parametrize("rule", EXAMPLES)
async def test_every_example_matches_the_python_evaluation(
    client: Any, auth: Any, loaded: Any, rule: str
):
    response = await client.get("/api/v1/audience/preview", params={"rule": rule}, headers=auth)
    assert response.status == 200
    body = await response.json()
    expected = {d["_id"] for d in loaded if evaluate(parse_rule(rule), d, rule_now())}
    assert set(body["audienceDetails"]["audienceIds"]) == expected
    assert body["audienceSize"] == body["audienceDetails"]["audienceSize"] == len(expected)
    assert len(body["sample"]) == min(10, len(expected))


async def test_segment_lifecycle(client: Any, auth: Any, loaded: Any):
    created = await client.post(
        "/api/v1/segment", headers=auth, json={"name": "Big spenders", "rule": "spend > 10000"}
    )
    assert created.status == 201
    segment = await created.json()
    assert set(segment) == {
        "id",
        "name",
        "rule",
        "audienceSize",
        "countedAt",
        "createdAt",
        "updatedAt",
    }
    assert (segment["name"], segment["audienceSize"]) == ("Big spenders", 2)
    original = await client.post(
        "/api/v1/segment", headers=auth, json={"segment_rule": {"rule": "visits > 2"}}
    )
    assert original.status == 201
    assert (await original.json())["audienceSize"] == 2
    listed = await (await client.get("/api/v1/segment", headers=auth)).json()
    assert [s["rule"] for s in listed["items"]] == ["visits > 2", "spend > 10000"]
    url = f"/api/v1/segment/{segment['id']}"
    assert (await (await client.get(url, headers=auth)).json())["audienceSize"] == 2
    updated = await client.put(url, headers=auth, json={"rule": "spend >= 10000"})
    assert (await updated.json())["audienceSize"] == 3
    assert (await client.delete(url, headers=auth)).status == 204
    assert (await client.get(url, headers=auth)).status == 404


async def test_invalid_rules_are_422_with_a_column(client: Any, auth: Any, system: Crmd):
    for method, path, body in (
        ("POST", "/api/v1/segment", {"name": "x", "rule": "spend >> 5"}),
        ("POST", "/api/v1/segment/preview", {"rule": "spend >> 5"}),
    ):
        response = await client.request(method, path, json=body, headers=auth)
        assert response.status == 422
        error = (await response.json())["error"]
        assert error["code"] == "invalid_rule"
        assert error["column"] == 8
        assert error["message"].startswith("unexpected '>' at column 8")
    listed = await client.get("/api/v1/customers", params={"rule": "spnd > 1"}, headers=auth)
    assert listed.status == 422
    assert await system.db.segments.count_documents({}) == 0


OVERFLOWING = [
    ("lastActive > 9999-12-31", 14),
    ("lastActive < 999999y", 14),
    ("inactive_days > 1000000", 17),
    ("lastActive < 3000y", 14),
    ("spend > 1" + "0" * 400, 9),
]


@pytest.mark.parametrize(("rule", "column"), OVERFLOWING)
async def test_rules_whose_dates_or_numbers_overflow_are_422_everywhere(
    client: Any, auth: Any, system: Crmd, rule: str, column: int
):
    requests = [
        ("POST", "/api/v1/segment/preview", {"json": {"rule": rule}}),
        ("GET", "/api/v1/audience/preview", {"params": {"rule": rule}}),
        ("GET", "/api/v1/customers", {"params": {"rule": rule}}),
        ("POST", "/api/v1/segment", {"json": {"name": "x", "rule": rule}}),
        ("POST", "/api/v1/campaigns", {"json": {"name": "x", "message": "hi", "rule": rule}}),
        ("GET", "/api/v1/generateMessage", {"params": {"name": "x", "rule": rule}}),
        ("POST", "/api/v1/ai/messages", {"json": {"objective": "x", "rule": rule}}),
    ]
    for method, path, kwargs in requests:
        response = await client.request(method, path, headers=auth, **kwargs)
        assert response.status == 422, (path, await response.text())
        error = (await response.json())["error"]
        assert (error["code"], error["column"]) == ("invalid_rule", column), path
    assert await system.db.segments.count_documents({}) == 0
    assert await system.db.campaigns.count_documents({}) == 0


async def test_previews_in_every_shape(client: Any, auth: Any, loaded: Any):
    post = await (
        await client.post(
            "/api/v1/segment/preview", headers=auth, json={"rule": 'location = "pune"'}
        )
    ).json()
    assert post["audienceSize"] == 2
    assert {c["customer_external_id"] for c in post["sample"]} == {"C2", "C6"}
    original = await client.request(
        "GET", "/api/v1/audience/preview", headers=auth, json={"rule": 'location = "pune"'}
    )
    body = await original.json()
    assert body["audienceDetails"]["audienceSize"] == 2
    assert len(body["audienceDetails"]["audienceIds"]) == 2
    filtered = await (
        await client.get("/api/v1/customers", headers=auth, params={"rule": "spend > 10000"})
    ).json()
    assert filtered["total"] == 2
    assert {c["customer_external_id"] for c in filtered["items"]} == {"C1", "C2"}
