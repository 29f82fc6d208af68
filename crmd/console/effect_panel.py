"""What a campaign's page says of its effect and of its A/B test, from its view
(``crmd.campaigns.schema.Campaign``): the figures written as the page shows them, the
lifts and the variants' metric drawn with their intervals, and the statement the AI
summary carries too (``crmd.campaigns.wording``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from markupsafe import Markup

from crmd.campaigns.wording import effect_statement, moment, supports
from crmd.console.intervals import Row, interval_chart, interval_of
from crmd.console.paging import DASH

Money = Callable[[Any], str]
METRICS = {
    "clicks": "click rate",
    "conversions": "conversion rate",
    "revenue": "revenue per recipient",
}
"""Each A/B metric as the page names it: per recipient, clicked, ordered, or revenue."""
VERDICT = {1: "above zero", -1: "below zero", 0: "includes zero"}


def _plain(value: Any) -> Any:
    """A part of the view as builtins, whether it holds Structs or dicts already."""
    return None if value is None else msgspec.to_builtins(value)


def _rate(value: float | None) -> str:
    return DASH if value is None else f"{value:.1%}"


def _points(value: float) -> str:
    return f"{value * 100:+.1f} pts"


def _signed(money: Money) -> Money:
    def write(value: Any) -> str:
        text = money(value)
        return f"+\u2060{text}" if float(value) > 0 else text  # (a word joiner: one line)

    return write


def _group(label: str, figures: Mapping[str, Any], money: Money) -> dict[str, Any]:
    return {
        "label": label,
        "customers": f"{figures['customers']:,}",
        "converted": f"{figures['converted']:,}",
        "orders": f"{figures['orders']:,}",
        "revenue": money(figures["revenue"]),
        "conversionRate": _rate(figures.get("conversionRate")),
        "revenuePerCustomer": (
            DASH
            if figures.get("revenuePerCustomer") is None
            else money(figures["revenuePerCustomer"])
        ),
    }


def _lift(
    name: str, value: Any, write: Callable[[float], str], unit: str, scaled: tuple[Any, Money]
) -> dict[str, Any]:
    interval = interval_of(value)
    assert interval is not None
    estimate, low, high = (write(interval[k]) for k in ("estimate", "low", "high"))
    said = f"{estimate}, 95 % interval {low} to {high}"
    incremental, write_total = scaled
    total = interval_of(incremental)
    return {
        "name": name,
        "estimate": estimate,
        "interval": f"{low} to {high}",
        "unit": unit,
        "verdict": VERDICT[supports(interval)],
        "chart": interval_chart([Row("", interval, said)], write, title=name),
        "total": (
            None
            if total is None
            else f"{write_total(total['estimate'])} ({write_total(total['low'])} to "
            f"{write_total(total['high'])})"
        ),
    }


def effect_panel(view: Mapping[str, Any], money: Money) -> dict[str, Any] | None:
    """The effect panel's content, or None while the campaign has no effect to show
    (none planned: a draft, a scheduled one)."""
    effect = _plain(view.get("effect"))
    if not effect or not (effect["messaged"]["customers"] or effect["heldOut"]["customers"]):
        return None  # nobody messaged or held out yet: nothing to show
    window = effect["window"]
    groups = [_group("Messaged", effect["messaged"], money)]
    measured = effect.get("conversionLift") is not None and effect.get("revenueLift") is not None
    if measured or effect["heldOut"]["customers"]:
        groups.append(_group("Held out", effect["heldOut"], money))
    by_click = [
        _group(label, effect[key], money)
        for key, label in (("clicked", "Messaged, clicked"), ("notClicked", "Messaged, no click"))
        if effect.get(key)
    ]
    lifts = []
    if measured:
        count = lambda v: f"{v:+,.0f}"  # noqa: E731
        lifts = [
            _lift(
                "Conversion lift",
                effect["conversionLift"],
                _points,
                "percentage points of messaged customers who ordered, over held-out ones",
                (effect.get("incrementalConversions"), count),
            ),
            _lift(
                "Revenue lift per customer",
                effect["revenueLift"],
                _signed(money),
                "revenue per messaged customer, over a held-out one",
                (effect.get("incrementalRevenue"), _signed(money)),
            ),
        ]
    minimum = effect.get("minimum") or {}
    return {
        # The verdict; what is not enough, or provisional, the page says apart.
        "statement": effect_statement(effect, money, window=False)
        if measured and effect["enoughData"]
        else "",
        "measured": measured,
        "enough": effect["enoughData"],
        "minimum": {k: f"{v:,}" for k, v in minimum.items()},
        "days": window["days"],
        "provisional": window["provisional"],
        "closesAt": moment(window["closesAt"]) if window.get("closesAt") else None,
        "groups": groups,
        "byClick": by_click,
        "lifts": lifts,
        "attributed": {
            "orders": f"{effect['messaged']['orders']:,}",
            "revenue": money(effect["messaged"]["revenue"]),
        },
    }


def _metric_writer(metric: str, money: Money) -> Callable[[float], str]:
    if metric == "revenue":
        return lambda v: str(money(v))
    return lambda v: f"{v:.1%}"


def variants_panel(view: Mapping[str, Any], money: Money) -> dict[str, Any] | None:
    """The A/B test's variants with their figures and the metric drawn, and its winner
    (or when it is picked); None for a campaign with one message."""
    variants = _plain(view.get("variants")) or []
    if not variants:
        return None
    test = _plain(view.get("abTest")) or {}
    metric = test.get("metric", "clicks")
    write = _metric_writer(metric, money)
    rows, drawn = [], []
    for v in variants:
        interval = interval_of(v.get("metric"))
        said = DASH
        if interval is not None:
            estimate, low, high = (write(interval[k]) for k in ("estimate", "low", "high"))
            said = f"{estimate} ({low} to {high})"
            drawn.append(Row(v["label"], interval, f"{v['label']}: {said}"))
        rows.append(
            {
                "label": v["label"],
                "subject": v.get("subject", ""),
                "message": v["message"],
                "recipients": f"{v['recipients']:,}",
                "clicked": f"{v['clicked']:,}",
                "converted": f"{v['converted']:,}",
                "revenue": money(v["revenue"]),
                "metric": said,
            }
        )
    title = f"Variants by {METRICS.get(metric, metric)}"
    winner = test.get("winner")
    return {
        "mode": test.get("mode", "split"),
        "testPercent": test.get("testPercent"),
        "waitMinutes": test.get("waitMinutes"),
        "metric": METRICS.get(metric, metric),
        "rows": rows,
        "chart": interval_chart(drawn, write, title=title, by_sign=False) if drawn else Markup(""),
        "winner": (
            None
            if not winner
            else {
                "label": winner["label"],
                "reason": winner["reason"],
                "decidedAt": moment(winner["decidedAt"]),
            }
        ),
        "decideAt": moment(test["decideAt"]) if test.get("decideAt") else None,
    }
