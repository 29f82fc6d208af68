"""A campaign's effect in one deterministic statement, claiming no more than the
interval supports: an effect is claimed only when its 95 % interval lies wholly on one
side of zero, never below the minimum data, and figures before the attribution window
closes are called provisional.

The AI summary carries this statement word for word, whoever writes the rest
(``crmd.ai.service.campaign_summary``), and the console shows it above the figures.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any


def plain_amount(value: float) -> str:
    """An amount with no currency (the suggesters are not told which): ``1,234.50``."""
    return f"{value:,.2f}"


def moment(value: Any) -> str:
    """``2026-12-07 14:30 UTC`` from a datetime or its ISO text; as given otherwise."""
    if isinstance(value, str):
        text: str = value
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
    if not isinstance(value, datetime):
        return str(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M} UTC"


def supports(interval: Mapping[str, float]) -> int:
    """+1: the interval lies above zero; -1: below; 0: it includes zero."""
    if interval["low"] > 0:
        return 1
    if interval["high"] < 0:
        return -1
    return 0


def _conversion(lift: Mapping[str, float]) -> str:
    points = lift["estimate"] * 100
    direction = "more" if points >= 0 else "less"
    verdict = {
        1: "the campaign made a difference",
        -1: "the campaign lowered conversion",
        0: "the interval includes zero, so no effect on conversion can be claimed yet",
    }[supports(lift)]
    return (
        f"Messaged customers converted {abs(points):.1f} points {direction} than held-out "
        f"ones (95 % interval {lift['low'] * 100:+.1f} to {lift['high'] * 100:+.1f} points): "
        f"{verdict}."
    )


def _revenue(lift: Mapping[str, float], amount: Callable[[float], str]) -> str:
    direction = "higher" if lift["estimate"] >= 0 else "lower"
    verdict = {
        1: "the campaign raised revenue",
        -1: "the campaign lowered revenue",
        0: "the interval includes zero, so no effect on revenue can be claimed yet",
    }[supports(lift)]
    return (
        f"Revenue per messaged customer was {amount(abs(lift['estimate']))} {direction} "
        f"(95 % interval {amount(lift['low'])} to {amount(lift['high'])}): {verdict}."
    )


def effect_statement(
    effect: Mapping[str, Any] | None,
    amount: Callable[[float], str] = plain_amount,
    *,
    window: bool = True,
) -> str:
    """What the campaign's ``effect`` (``crmd.campaigns.schema.Effect``, as builtins or
    as the view has it) lets one say, in one to three sentences; empty without one, or
    before anyone was messaged or held out. ``window``: say whether the figures are
    provisional (a page that says it apart leaves it out)."""
    if not effect or not (effect["messaged"]["customers"] or effect["heldOut"]["customers"]):
        return ""
    said: list[str] = []
    messaged, held = effect["messaged"], effect["heldOut"]
    conversion, revenue = effect.get("conversionLift"), effect.get("revenueLift")
    if not held["customers"]:
        said.append(
            "Without a holdout group the effect cannot be measured; "
            f"{messaged['orders']:,} attributed order{'' if messaged['orders'] == 1 else 's'} "
            f"from {messaged['converted']:,} of {messaged['customers']:,} messaged customers "
            f"brought {amount(messaged['revenue'])}."
        )
    elif not effect["enoughData"] or conversion is None or revenue is None:
        # (A held-out group too small for an interval: one customer has no spread.)
        need = effect.get("minimum") or {}
        said.append(
            "There is not enough data yet to measure the effect (it needs "
            f"{need.get('customers', 0):,} customers in each group and "
            f"{need.get('conversions', 0):,} conversions; so far {messaged['customers']:,} "
            f"messaged, {held['customers']:,} held out and "
            f"{messaged['converted'] + held['converted']:,} conversions)."
        )
    else:
        said.append(_conversion(conversion))
        said.append(_revenue(revenue, amount))
    attribution = effect["window"]
    if window and attribution.get("provisional"):
        closes = attribution.get("closesAt")
        until = f"until {moment(closes)}" if closes else "until the sending ends"
        days = attribution["days"]
        said.append(f"Provisional {until}, when the {days}-day attribution window closes.")
    return " ".join(said)


CLAIM_VERB = re.compile(
    r"\b(increas|rais|rose|boost|lift|grew|grow|improv|drove|driv|uplift|spik|doubl|"
    r"caus|led to|result(ed)? in|paid off|work(ed)?\b)",
    re.IGNORECASE,
)
CLAIM_WHAT = re.compile(
    r"\b(revenue|sales|conversion|convert|order|purchas|buy|bought|spend)", re.I
)
SENTENCE = re.compile(r"[^.!?]+[.!?]?")


def claimed(effect: Mapping[str, Any] | None) -> bool:
    """Whether the effect lets a summary say the campaign changed what customers did:
    enough data and an interval of either lift wholly on one side of zero."""
    if not effect or not effect.get("enoughData"):
        return False
    lifts = [effect.get("conversionLift"), effect.get("revenueLift")]
    return any(lift is not None and supports(lift) for lift in lifts)


def overclaims(text: str, effect: Mapping[str, Any] | None, statement: str) -> bool:
    """Whether ``text`` (a model's summary) says the campaign raised sales, orders,
    revenue or conversion when the effect does not let anyone say so: a sentence, crmd's
    own statement aside, with a verb of change and a word of buying. A heuristic, and a
    strict one: a summary it refuses is written by the next suggester instead."""
    if claimed(effect):
        return False
    rest = " ".join(text.split()).replace(statement, " ") if statement else text
    return any(
        CLAIM_VERB.search(sentence) and CLAIM_WHAT.search(sentence)
        for sentence in SENTENCE.findall(rest)
    )
