"""The statement of a campaign's effect claims an effect exactly when its 95 % interval
leaves out zero, never below the minimum data, and says when figures are provisional."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crmd.campaigns.wording import effect_statement
from tests.console.test_effect_panel import effect


def test_an_interval_above_zero_is_a_difference_made():
    said = effect_statement(effect())
    assert said == (
        "Messaged customers converted 4.1 points more than held-out ones (95 % interval "
        "+1.2 to +7.0 points): the campaign made a difference. Revenue per messaged "
        "customer was 38.50 higher (95 % interval 9.25 to 67.75): the campaign raised revenue."
    )


def test_an_interval_across_zero_claims_nothing():
    said = effect_statement(effect((0.012, -0.01, 0.034), (-4.0, -30.5, 22.5)))
    assert "converted 1.2 points more" in said
    assert "(95 % interval -1.0 to +3.4 points)" in said
    assert said.count("the interval includes zero, so no effect") == 2
    assert "made a difference" not in said and "raised" not in said


def test_an_interval_below_zero_is_said_as_a_loss():
    said = effect_statement(effect((-0.05, -0.08, -0.02), (-12.0, -20.0, -4.0)))
    assert "converted 5.0 points less" in said and "the campaign lowered conversion" in said
    assert "was 12.00 lower" in said and "the campaign lowered revenue" in said


def test_too_little_data_states_the_minimum_and_no_effect():
    said = effect_statement(effect(enough=False))
    assert said == (
        "There is not enough data yet to measure the effect (it needs 50 customers in each "
        "group and 10 conversions; so far 1,000 messaged, 1,000 held out and 225 conversions)."
    )


def test_without_a_holdout_only_the_attributed_revenue_is_said():
    said = effect_statement(effect(None), lambda v: f"₹{v:,.2f}")
    assert said == (
        "Without a holdout group the effect cannot be measured; 166 attributed orders from "
        "133 of 1,000 messaged customers brought ₹99,750.00."
    )


def test_an_open_window_is_provisional_until_it_closes():
    said = effect_statement(effect(provisional=True))
    assert said.endswith(
        "Provisional until 2026-12-14 09:30 UTC, when the 7-day attribution window closes."
    )
    sending = effect(provisional=True)
    sending["window"]["closesAt"] = None
    assert "Provisional until the sending ends" in effect_statement(sending)


def test_no_effect_no_statement():
    assert effect_statement(None) == ""


ends = st.floats(min_value=-1, max_value=1, allow_nan=False).map(lambda v: round(v, 4))


@given(st.lists(ends, min_size=3, max_size=3), st.lists(ends, min_size=3, max_size=3))
def test_an_effect_is_claimed_only_when_its_interval_leaves_out_zero(
    conversion: list[float], revenue: list[float]
):
    low, estimate, high = sorted(conversion)
    r_low, r_estimate, r_high = sorted(revenue)
    figures: dict[str, Any] = effect((estimate, low, high), (r_estimate, r_low, r_high))
    said = effect_statement(figures)
    assert ("made a difference" in said) == (low > 0)
    assert ("lowered conversion" in said) == (high < 0)
    assert ("raised revenue" in said) == (r_low > 0)
    assert ("lowered revenue" in said) == (r_high < 0)
    figures["enoughData"] = False
    assert not any(claim in effect_statement(figures) for claim in ("made a", "raised", "lowered"))


def test_nothing_is_said_before_anyone_is_messaged_or_held_out():
    figures = effect(None)
    figures["messaged"] = {**figures["messaged"], "customers": 0, "converted": 0, "orders": 0}
    assert effect_statement(figures) == ""
