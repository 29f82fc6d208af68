"""The deliveries chart is drawn from when each message was handed over, delivered and
failed (the receipts' own timestamps), however the receipts trickled in; the opens and
clicks chart from when each was first opened and clicked, or from the stats snapshots
of a campaign too large to read its log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from crmd.app import Crmd
from crmd.console.chart import (
    charts_of,
    deliveries_chart,
    engagement_chart,
    engagement_timeline,
    receipts_timeline,
)
from crmd.store import documents
from crmd.store.tenant import TenantStore
from tests.campaigns.conftest import a_campaign

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_the_timeline_counts_each_message_once_at_its_receipts_time():
    times = [
        {"SENT": at(0), "DELIVERED": at(30)},
        {"SENT": at(0), "FAILED": at(45)},
        {"SENT": at(10)},
        {"FAILED": at(5)},  # refused at hand-over: handed over and failed at once
        {},
    ]
    timeline = receipts_timeline(times, points=120)
    last = timeline[max(timeline, key=int)]
    assert last == [4, 1, 2]  # handed over, delivered, failed
    assert max(int(second) for second in timeline) == 45
    by_second = {int(k): v for k, v in timeline.items()}
    assert by_second[30] == [4, 1, 1]  # at 30 s: delivered one, one failed (at 5 s) so far
    assert receipts_timeline([]) == {}


def test_the_chart_says_what_it_draws():
    times = [{"SENT": at(0), "DELIVERED": at(90)}, {"SENT": at(1), "FAILED": at(2)}]
    chart = str(deliveries_chart(receipts_timeline(times), 2))
    assert 'aria-label="After 90 s: 2 handed over, 1 delivered, 1 failed, of 2"' in chart
    assert 'viewBox="0 0 960 240"' in chart


def test_a_long_campaign_keeps_few_points():
    times = [{"SENT": at(i), "DELIVERED": at(i + 5)} for i in range(0, 36_000, 3)]
    timeline = receipts_timeline(times, points=120)
    assert len(timeline) <= 121
    assert timeline[max(timeline, key=int)] == [12_000, 12_000, 0]


def test_opens_and_clicks_count_from_the_first_hand_over():
    times = [
        {"SENT": at(0), "DELIVERED": at(5), "OPENED": at(60), "CLICKED": at(90)},
        {"SENT": at(10), "DELIVERED": at(12), "OPENED": at(30)},
        {"SENT": at(10), "SOFT_BOUNCED": at(20)},
    ]
    timeline = engagement_timeline(times, points=120)
    by_second = {int(k): v for k, v in timeline.items()}
    assert by_second == {30: [1, 0], 60: [2, 0], 90: [2, 1]}
    assert engagement_timeline([{"SENT": at(0), "DELIVERED": at(3)}]) == {}
    chart = str(engagement_chart(timeline, 2))
    assert 'aria-label="After 90 s: 2 opened, 1 clicked, of 2 delivered"' in chart
    assert "No opens or clicks yet" in str(engagement_chart({}, 2))


def test_snapshots_kept_before_opens_and_clicks_still_draw_their_deliveries():
    old_and_new = {"0": [3, 1, 0], "5": [4, 2, 1], "10": [4, 3, 1, 2, 1]}
    chart = str(deliveries_chart(old_and_new, 4))
    assert 'aria-label="After 10 s: 4 handed over, 3 delivered, 1 failed, of 4"' in chart
    opened_clicked = {k: v[3:5] for k, v in old_and_new.items()}
    drawn = str(engagement_chart(opened_clicked, 3))  # the one new point, from nothing
    assert 'aria-label="After 10 s: 2 opened, 1 clicked, of 3 delivered"' in drawn


async def test_a_large_campaigns_opens_and_clicks_are_drawn_from_its_snapshots(system: Crmd):
    store = TenantStore(system.db, "u1")
    campaign = ObjectId()
    snapshots = {"0": [10, 0, 0], "60": [6000, 5000, 10, 900, 120]}  # an old point, a new one
    raw = a_campaign(campaign, "completed", audienceSize=6000, timeline=snapshots)
    await store["campaigns"].insert_one(raw)  # (no log is read: there are none)
    drawn = await charts_of(store, documents.decode(raw, documents.Campaign), 5000)
    assert "900 opened, 120 clicked, of 5,000 delivered" in str(drawn.engagement)
    assert "6,000 handed over, 5,000 delivered, 10 failed" in str(drawn.deliveries)


def test_a_message_heard_of_only_as_opened_clicked_or_complained_was_delivered_then():
    times = [
        {"SENT": at(0), "OPENED": at(20), "CLICKED": at(25)},  # an smtp vendor's: no DELIVERED
        {"SENT": at(0), "COMPLAINED": at(40)},
        {"SENT": at(0), "DELIVERED": at(10), "OPENED": at(30)},
    ]
    by_second = {int(k): v for k, v in receipts_timeline(times, points=120).items()}
    assert (by_second[10], by_second[20], by_second[40]) == ([3, 1, 0], [3, 2, 0], [3, 3, 0])
    bounced = [{"SENT": at(0), "DELIVERED": at(5), "BOUNCED": at(50)}, {"FAILED": at(3)}]
    last = receipts_timeline(bounced)
    assert last[max(last, key=int)] == [2, 0, 2]  # as the stats count them: two failed
