"""What a campaign's messages did (bounced, complained, opened, clicked, per link),
recounted from logs of every kind and compared with a count made here, in Python, from
the same logs and the definitions alone: the stored figures never drift from the logs."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient

from crmd.app import Crmd
from crmd.campaigns import engagement, stats
from crmd.messages import LOG_STATUSES, MessageStatus
from crmd.services.embedded import Urls
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import a_campaign
from tests.conftest import examples

S = MessageStatus
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TIMED = ("SENT", "DELIVERED", "OPENED", "CLICKED", "BOUNCED", "COMPLAINED", "SOFT_BOUNCED")


@st.composite
def logs(draw: st.DrawFn) -> dict[str, Any]:
    """A message log as the writers of receipts, opens, clicks and bounces leave it."""
    log: dict[str, Any] = {"status": draw(st.sampled_from(LOG_STATUSES))}
    seen = draw(st.lists(st.sampled_from(TIMED), unique=True, max_size=4))
    if seen or draw(st.booleans()):  # no ``times`` at all, or an empty one
        log["times"] = {k: START + timedelta(minutes=draw(st.integers(0, 90))) for k in seen}
    clicks = draw(st.dictionaries(st.sampled_from("0123"), st.integers(1, 5), max_size=3))
    if clicks:
        log["clicks"] = clicks
    for field in ("opens", "machineOpens"):
        if draw(st.booleans()):  # absent, or any count (0 included)
            log[field] = draw(st.integers(0, 4))
    return log


def counted_here(docs: list[dict[str, Any]]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """The figures and the clicks per link, from the issue's definitions."""
    times = [d.get("times", {}) for d in docs]
    figures = {
        "bouncedHard": sum(d["status"] == S.BOUNCED for d in docs),
        "bouncedSoft": sum(
            "SOFT_BOUNCED" in t and d["status"] != S.BOUNCED
            for d, t in zip(docs, times, strict=True)
        ),
        "complained": sum(d["status"] == S.COMPLAINED for d in docs),
        "openedPeople": sum("OPENED" in t for t in times),
        "openedMachine": sum(
            d.get("machineOpens", 0) > 0 and "OPENED" not in t
            for d, t in zip(docs, times, strict=True)
        ),
        "clicked": sum("CLICKED" in t for t in times),
        "clicks": sum(sum(d.get("clicks", {}).values()) for d in docs),
    }
    unique: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for d in docs:
        for index, n in d.get("clicks", {}).items():
            unique[index] += 1
            total[index] += n
    return figures, {k: [unique[k], total[k]] for k in unique}


async def recount_and_read(mongodb: str, db_name: str, docs: list[dict[str, Any]]) -> Any:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb, tz_aware=True)
    try:
        db = client[db_name]
        store = TenantStore(db, "u1")
        campaign = ObjectId()
        await store["campaigns"].insert_one(
            a_campaign(campaign, "sent", lastSeq=len(docs), plannedAt=START)
        )
        mine = [
            {**d, "_id": f"{campaign}-{i}", "campaignId": str(campaign)} for i, d in enumerate(docs)
        ]
        # Another campaign's and another tenant's logs of the same campaign: not counted.
        others = [
            {**d, "_id": f"x{campaign}-{i}", "campaignId": "other"} for i, d in enumerate(docs)
        ]
        theirs = [
            {**d, "_id": f"y{campaign}-{i}", "campaignId": str(campaign), "userId": "u2"}
            for i, d in enumerate(docs)
        ]
        if docs:
            await store["communication_log"].insert_many([*mine, *others])
            await db["communication_log"].insert_many(theirs)
        counted = await stats.refresh(store, str(campaign))
        stored = await store["campaigns"].find_one({"_id": campaign})
        return counted, stored
    finally:
        await client.close()


@pytest.fixture(scope="module")
def database(services: Urls) -> tuple[str, str]:
    return services.mongodb, f"engagement_{uuid.uuid4().hex[:10]}"


@settings(
    max_examples=examples(50),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(docs=st.lists(logs(), max_size=25))
def test_the_stored_figures_are_those_counted_from_the_logs(
    docs: list[dict[str, Any]], database: tuple[str, str]
):
    counted, stored = asyncio.run(recount_and_read(*database, docs))
    figures, links = counted_here(docs)
    assert stored["engagement"] == figures
    assert stored["linkClicks"] == links
    assert stored["byStatus"] == dict(Counter(d["status"] for d in docs))
    assert stored["stats"] == counted
    delivered = (S.DELIVERED, S.OPENED, S.CLICKED, S.COMPLAINED)
    assert counted["delivered"] == sum(d["status"] in delivered for d in docs)
    [point] = stored["timeline"].values()
    assert point[1:] == [
        counted["delivered"],
        counted["failed"],
        figures["openedPeople"],
        figures["clicked"],
    ]


def test_rates_are_over_delivered_and_null_with_nothing_delivered():
    done = dict.fromkeys(engagement.FIGURES, 0) | {
        "openedPeople": 3,
        "clicked": 1,
        "complained": 1,
        "bouncedHard": 2,
    }
    view = engagement.stats_view({"delivered": 8, "sent": 1, "failed": 3, "unknown": 0}, done)
    assert (view["openRate"], view["clickRate"], view["complaintRate"]) == (0.375, 0.125, 0.125)
    assert view["bounceRate"] == round(2 / 12, 4)  # over the 12 handed over
    assert view["bounced"] == {"hard": 2, "soft": 0}
    nothing = engagement.stats_view({"pending": 5}, {})
    assert nothing["openRate"] is nothing["clickRate"] is nothing["bounceRate"] is None
    assert nothing["opened"] == {"people": 0, "machine": 0}


def test_links_come_in_index_order_with_their_share():
    rows = engagement.links_view(
        ["https://a.example/", "https://b.example/"], {"1": [2, 3], "0": [1, 1]}
    )
    assert [(r["index"], r["url"], r["unique"], r["total"]) for r in rows] == [
        (0, "https://a.example/", 1, 1),
        (1, "https://b.example/", 2, 3),
    ]
    assert [r["share"] for r in rows] == [0.25, 0.75]
    never = engagement.links_view(["https://a.example/"], {})
    assert never == [
        {"url": "https://a.example/", "index": 0, "unique": 0, "total": 0, "share": None}
    ]


async def test_the_api_and_its_document_carry_what_the_messages_did(
    client: Any, auth: dict[str, str], system: Crmd
):
    body = {"name": "Links", "message": "Hi {name}", "rule": "spend > 5", "draft": True}
    made = await (await client.post("/api/v1/campaigns", json=body, headers=auth)).json()
    campaign = await system.db.campaigns.find_one({"_id": ObjectId(made["id"])})
    urls = ["https://shop.example/sale", "https://shop.example/faq"]
    await system.db.campaigns.update_one({"_id": campaign["_id"]}, {"$set": {"links": urls}})
    store = TenantStore(system.db, campaign["userId"])
    at = {"DELIVERED": START, "OPENED": START + timedelta(minutes=3)}
    clicked = {**at, "CLICKED": START + timedelta(minutes=4)}
    docs = [
        {"status": "CLICKED", "times": clicked, "opens": 2, "clicks": {"0": 3, "1": 1}},
        {"status": "CLICKED", "times": clicked, "opens": 1, "clicks": {"0": 1}},
        {"status": "OPENED", "times": at, "opens": 1},
        {"status": "DELIVERED", "times": {"DELIVERED": START}, "machineOpens": 2},
        {"status": "COMPLAINED", "times": {**at, "COMPLAINED": START}},
        {"status": "BOUNCED", "times": {"BOUNCED": START, "SOFT_BOUNCED": START}},
        {"status": "SENT", "times": {"SOFT_BOUNCED": START}},
        {"status": "SENT"},
    ]
    await store["communication_log"].insert_many(
        [
            {**d, "_id": f"m{i}", "seq": i + 1, "customerId": f"c{i}", "message": "Hi"}
            | {"campaignId": made["id"], "updatedAt": START}
            for i, d in enumerate(docs)
        ]
    )
    await system.db.campaigns.update_one({"_id": campaign["_id"]}, {"$set": {"lastSeq": 8}})
    await stats.refresh(store, made["id"])

    answer = await (await client.get(f"/api/v1/campaigns/{made['id']}", headers=auth)).json()
    got = answer["stats"]
    assert (got["delivered"], got["sent"], got["failed"]) == (5, 2, 1)
    assert got["bounced"] == {"hard": 1, "soft": 1}
    assert got["opened"] == {"people": 4, "machine": 1}
    assert (got["complained"], got["clicked"], got["clicks"]) == (1, 2, 5)
    assert (got["openRate"], got["clickRate"], got["complaintRate"]) == (0.8, 0.4, 0.2)
    assert got["bounceRate"] == 0.125  # one hard bounce of the eight handed over
    assert answer["links"] == [
        {"url": urls[0], "index": 0, "unique": 2, "total": 4, "share": 0.8},
        {"url": urls[1], "index": 1, "unique": 1, "total": 1, "share": 0.2},
    ]
    page = await (await client.get(f"/api/v1/campaigns/{made['id']}/logs", headers=auth)).json()
    first, *_, last = page["items"]
    assert (first["clicks"], first["opens"], first["times"]["CLICKED"]) == (
        {"0": 3, "1": 1},
        2,
        "2026-12-01T09:04:00Z",
    )
    assert not {"clicks", "opens", "machineOpens", "times"} & set(last)  # nothing to say

    document = await (await client.get("/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    described = schemas["CampaignStats"]["properties"]
    for name in ("bounced", "complained", "opened", "clicked", "clicks", "openRate"):
        assert name in described, name
    assert set(schemas["Bounced"]["properties"]) == {"hard", "soft"}
    assert set(schemas["Opened"]["properties"]) == {"people", "machine"}
    assert "links" in schemas["Campaign"]["required"]
    assert set(schemas["LinkClicks"]["properties"]) == {"url", "index", "unique", "total", "share"}
    assert {"times", "opens", "clicks"} <= set(schemas["LogEntry"]["properties"])


def test_a_messages_story_is_told_in_the_order_it_happened():
    log = {
        "times": {
            "CLICKED": START + timedelta(minutes=9),
            "SENT": START,
            "OPENED": START + timedelta(minutes=4),
            "DELIVERED": START + timedelta(minutes=1),
        },
        "opens": 1,
        "clicks": {"0": 2, "2": 1},
    }
    assert [(s["said"], s["detail"]) for s in engagement.what_it_did(log)] == [
        ("Handed over", ""),
        ("Delivered", ""),
        ("Opened", "1 time"),
        ("Clicked", "3 clicks"),
    ]
    prefetched = {"times": {"DELIVERED": START}, "machineOpens": 3}
    assert [s["said"] for s in engagement.what_it_did(prefetched)] == [
        "Delivered",
        "Opened by a machine only",
    ]
    assert engagement.what_it_did({"status": "PENDING"}) == []
