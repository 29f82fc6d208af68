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
    max_examples=examples(120),
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
