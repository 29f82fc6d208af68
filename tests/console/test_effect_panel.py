"""The effect panel and the A/B panel of a campaign's page, from views shaped as the API
answers them (``crmd.campaigns.schema.Campaign``): what is written, what is drawn, and
that nothing is claimed that the interval does not support."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import msgspec
import pytest

from crmd.campaigns.schema import Campaign
from crmd.console.effect_panel import effect_panel, variants_panel
from crmd.console.formats import money
from crmd.console.intervals import Row, interval_chart

SVG = "{http://www.w3.org/2000/svg}"


def rupees(value: Any) -> str:
    return money(value, "INR")


def group(customers: int, converted: int, revenue: float) -> dict[str, Any]:
    return {
        "customers": customers,
        "converted": converted,
        "orders": converted + converted // 4,
        "revenue": revenue,
        "conversionRate": converted / customers if customers else None,
        "revenuePerCustomer": revenue / customers if customers else None,
    }


def effect(
    lift: tuple[float, float, float] | None = (0.041, 0.012, 0.070),
    revenue: tuple[float, float, float] = (38.5, 9.25, 67.75),
    *,
    enough: bool = True,
    provisional: bool = False,
) -> dict[str, Any]:
    def interval(e: float, lo: float, hi: float) -> dict[str, float]:
        return {"estimate": e, "low": lo, "high": hi}

    held = group(1000, 92, 61_250.0) if lift else group(0, 0, 0.0)
    return {
        "window": {"days": 7, "closesAt": "2026-12-14T09:30:00Z", "provisional": provisional},
        "messaged": group(1000, 133, 99_750.0),
        "heldOut": held,
        "conversionLift": interval(*lift) if lift else None,
        "revenueLift": interval(*revenue) if lift else None,
        "incrementalConversions": interval(*(v * 1000 for v in lift)) if lift else None,
        "incrementalRevenue": interval(*(v * 1000 for v in revenue)) if lift else None,
        "enoughData": enough,
        "minimum": {"customers": 50, "conversions": 10},
        "clicked": group(210, 61, 45_000.0),
        "notClicked": group(790, 72, 54_750.0),
    }


def view(**fields: Any) -> dict[str, Any]:
    """A campaign view checked against the API's schema, as builtins."""
    base = {
        "id": "656565656565656565656565",
        "name": "Winter sale",
        "message": "Hi {name}",
        "subject": "",
        "html": "",
        "intent": "",
        "rule": "spend > 0",
        "segmentId": None,
        "vendor": "dummy",
        "status": "completed",
        "audienceSize": 2000,
        "stats": {
            "pending": 0,
            "sent": 0,
            "delivered": 1000,
            "failed": 0,
            "unknown": 0,
            "cancelled": 0,
        },
        "deliveryRate": 0.5,
        "links": [],
        "actions": [],
        "createdAt": "2026-12-07T09:00:00Z",
        "scheduledAt": None,
        "sentAt": "2026-12-07T09:01:00Z",
        "completedAt": "2026-12-07T09:30:00Z",
        "holdout": 50.0,
        "revenue": 99_750.0,
    }
    return msgspec.to_builtins(msgspec.convert(base | fields, Campaign))  # type: ignore[no-any-return]


def drawn(markup: str) -> ET.Element:
    svg = ET.fromstring(str(markup))
    assert svg.tag == f"{SVG}svg"
    return svg


def test_a_measured_effect_is_written_and_drawn_with_its_intervals():
    panel = effect_panel(view(effect=effect()), rupees)
    assert panel is not None and panel["measured"] and panel["enough"]
    assert [g["label"] for g in panel["groups"]] == ["Messaged", "Held out"]
    assert panel["groups"][0]["conversionRate"] == "13.3%"
    assert panel["groups"][1]["revenuePerCustomer"] == "₹61.25"
    conversion, revenue = panel["lifts"]
    assert conversion["estimate"] == "+4.1 pts"
    assert conversion["interval"] == "+1.2 pts to +7.0 pts"
    assert conversion["verdict"] == "above zero"
    assert conversion["total"] == "+41 (+12 to +70)"
    assert revenue["total"] == "+\u2060₹38,500.00 (+\u2060₹9,250.00 to +\u2060₹67,750.00)"
    assert revenue["estimate"] == "+\u2060₹38.50"
    assert revenue["interval"] == "+\u2060₹9.25 to +\u2060₹67.75"
    assert "the campaign made a difference" in panel["statement"]
    for lift in panel["lifts"]:
        svg = drawn(lift["chart"])
        assert len(svg.findall(f"{SVG}rect")) == 1 and len(svg.findall(f"{SVG}circle")) == 1
        assert svg.find(f"{SVG}line[@data-zero]") is not None
        assert svg.get("role") == "img" and "95 % interval" in svg.get("aria-label", "")


def test_the_bar_sits_between_low_and_high_and_zero_is_on_the_scale():
    svg = drawn(
        interval_chart([Row("", {"estimate": 3, "low": 1, "high": 5}, "x")], str, title="t")
    )
    bar = svg.find(f"{SVG}rect")
    dot = svg.find(f"{SVG}circle")
    zero = svg.find(f"{SVG}line[@data-zero]")
    assert bar is not None and dot is not None and zero is not None
    left, width = float(bar.get("x", 0)), float(bar.get("width", 0))
    zero_x, dot_x = float(zero.get("x1", 0)), float(dot.get("cx", 0))
    assert zero_x < left < dot_x < left + width  # 0 < 1 < 3 < 5, on one scale
    assert (dot_x - left) == pytest.approx(width / 2, abs=0.2)
    assert bar.get("fill") == "#1e7a4a"  # wholly above zero


def test_an_interval_across_zero_is_grey_and_claims_nothing():
    figures = effect((0.01, -0.02, 0.04), (5.0, -20.0, 30.0), provisional=True)
    panel = effect_panel(view(effect=figures), rupees)
    assert panel is not None
    assert [lift["verdict"] for lift in panel["lifts"]] == ["includes zero", "includes zero"]
    for lift in panel["lifts"]:
        bar = drawn(lift["chart"]).find(f"{SVG}rect")
        assert bar is not None and bar.get("fill") == "#8a93a3"
    assert "no effect on conversion can be claimed" in panel["statement"]
    assert "made a difference" not in panel["statement"]
    assert "Provisional" not in panel["statement"]  # the page says it apart


def test_too_little_data_and_an_open_window_are_said():
    panel = effect_panel(view(effect=effect(enough=False, provisional=True)), rupees)
    assert panel is not None
    assert not panel["enough"] and panel["minimum"] == {"customers": "50", "conversions": "10"}
    assert panel["provisional"] and panel["closesAt"] == "2026-12-14 09:30 UTC"
    assert panel["statement"] == ""  # no verdict: the notices say why


def test_without_a_holdout_it_shows_what_was_attributed_and_no_lift():
    panel = effect_panel(view(holdout=0.0, effect=effect(None)), rupees)
    assert panel is not None and not panel["measured"] and panel["lifts"] == []
    assert [g["label"] for g in panel["groups"]] == ["Messaged"]
    assert panel["attributed"] == {"orders": "166", "revenue": "₹99,750.00"}
    assert panel["statement"] == ""


def test_a_campaign_not_sent_yet_has_no_panel():
    assert effect_panel(view(status="draft"), rupees) is None
    assert variants_panel(view(status="draft"), rupees) is None


def ab_view(status: str, winner: bool) -> dict[str, Any]:
    def variant(i: int, recipients: int, clicked: int) -> dict[str, Any]:
        rate = clicked / recipients
        return {
            "index": i, "label": "ABC"[i], "message": f"Hi {{name}}, offer {i}",
            "subject": f"Offer {i}", "html": "", "recipients": recipients, "clicked": clicked,
            "converted": clicked // 3, "revenue": clicked * 400.0,
            "metric": {"estimate": rate, "low": max(rate - 0.05, 0), "high": rate + 0.05},
        }  # fmt: skip

    chosen = {
        "variant": 1,
        "label": "B",
        "metric": "clicks",
        "decidedAt": "2026-12-07T13:01:00Z",
        "figures": [],
        "reason": "B had the most clicks per recipient (18.0 %, against 9.0 % and 11.0 %).",
    }
    return view(
        status=status,
        message="",
        variants=[variant(0, 200, 18), variant(1, 200, 36), variant(2, 200, 22)],
        abTest={
            "mode": "winner",
            "testPercent": 30.0,
            "waitMinutes": 240.0,
            "metric": "clicks",
            "decideAt": "2026-12-07T13:01:00Z",
            "winner": chosen if winner else None,
        },
    )


def test_variants_are_tabled_drawn_and_their_winner_named_with_its_reason():
    panel = variants_panel(ab_view("completed", winner=True), rupees)
    assert panel is not None
    assert [r["label"] for r in panel["rows"]] == ["A", "B", "C"]
    assert panel["rows"][1]["metric"] == "18.0% (13.0% to 23.0%)"
    assert panel["winner"] == {
        "label": "B",
        "reason": "B had the most clicks per recipient (18.0 %, against 9.0 % and 11.0 %).",
        "decidedAt": "2026-12-07 13:01 UTC",
    }
    svg = drawn(panel["chart"])
    assert len(svg.findall(f"{SVG}rect")) == 3
    assert {bar.get("fill") for bar in svg.findall(f"{SVG}rect")} == {"#2456c7"}  # not signs
    labels = [t.text for t in svg.findall(f"{SVG}text") if t.get("font-weight")]
    assert labels == ["A", "B", "C"]


def test_while_testing_it_says_when_the_winner_is_picked():
    panel = variants_panel(ab_view("testing", winner=False), rupees)
    assert panel is not None and panel["winner"] is None
    assert panel["decideAt"] == "2026-12-07 13:01 UTC"


def test_labels_are_escaped():
    svg = interval_chart(
        [Row("<b>", {"estimate": 1, "low": 0, "high": 2}, "<script>")], str, title="a&b"
    )
    assert "<b>" not in str(svg) and "<script>" not in str(svg)
    assert re.search(r"&lt;b&gt;", str(svg))


def test_a_campaign_nobody_was_messaged_by_has_no_panel():
    nobody = effect(None)
    nobody["messaged"] = {**nobody["messaged"], "customers": 0, "converted": 0, "orders": 0}
    assert effect_panel(view(status="scheduled", effect=nobody), rupees) is None


def test_a_summary_is_stale_once_the_effect_moves_or_its_window_closes():
    from crmd.console.campaign_page import summary_basis

    before = summary_basis(view(effect=effect(provisional=True)))
    assert before["messagedConverted"] == 133 and before["heldOutConverted"] == 92
    assert before["provisional"] == 1
    assert summary_basis(view(effect=effect(provisional=False))) != before
    more = effect(provisional=True)
    more["heldOut"] = {**more["heldOut"], "orders": more["heldOut"]["orders"] + 1}
    assert summary_basis(view(effect=more)) != before
    assert summary_basis(view(effect=effect(provisional=True))) == before
    assert set(summary_basis(view(status="draft"))) == {
        "pending", "sent", "delivered", "failed", "unknown", "cancelled", "suppressed", "heldOut",
    }  # fmt: skip
