"""The effect intervals: the t quantile against printed tables and closed forms, each
interval against a published or hand-worked example, and their coverage by simulation."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmd.campaigns.intervals import (
    LEVEL,
    Interval,
    mean_difference,
    mean_interval,
    proportion_difference,
    proportion_interval,
    scaled,
    t_quantile,
)

# -- the t quantile -----------------------------------------------------------------

# t(0.975, df) as printed to nine significant figures in the usual tables (and as R's
# qt gives it): the four-figure textbook values 12.7062, 4.3027, 2.5706, 2.2281, 2.0423,
# 1.9799 with enough digits to check 1e-6.
TABLE = [
    (1, 12.7062047),
    (2, 4.30265273),
    (5, 2.57058184),
    (10, 2.22813885),
    (30, 2.04227246),
    (120, 1.97993041),
    (math.inf, 1.95996398),
]


@pytest.mark.parametrize(("df", "printed"), TABLE)
def test_t_quantile_matches_the_printed_table(df: float, printed: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(printed, abs=1e-6)
    assert t_quantile(0.025, df) == pytest.approx(-printed, abs=1e-6)


def test_very_many_degrees_of_freedom_give_the_normal_quantile() -> None:
    normal = statistics.NormalDist().inv_cdf(0.975)
    assert normal == pytest.approx(1.959964, abs=1e-6)
    assert t_quantile(0.975, 1e12) == pytest.approx(normal, abs=1e-11)
    assert t_quantile(0.975, 1e6) == pytest.approx(normal, abs=1e-5)
    assert t_quantile(0.975, 1e6) > normal


def closed_form(p: float, df: int) -> float:
    """The t quantiles that have a closed form: 1, 2 and 4 degrees of freedom, written
    so that they keep their digits near p = 0, 1/2 and 1."""
    tail = min(p, 1 - p)
    if df == 1:  # the Cauchy distribution: tan(pi (p - 1/2))
        magnitude = 1 / math.tan(math.pi * tail)
    elif df == 2:
        magnitude = (1 - 2 * tail) / math.sqrt(2 * tail * (1 - tail))
    else:  # df = 4: 2 sqrt(cos(theta / 3) / cos(theta) - 1), cos(theta) = sqrt(4p(1 - p))
        cos = math.sqrt(4 * tail * (1 - tail))
        theta = math.atan2(1 - 2 * tail, cos)
        magnitude = 2 * math.sqrt(2 * math.sin(2 * theta / 3) * math.sin(theta / 3) / cos)
    return magnitude if p > 0.5 else -magnitude


@given(p=st.floats(min_value=1e-9, max_value=1 - 1e-9), df=st.sampled_from([1, 2, 4]))
def test_t_quantile_matches_the_closed_forms(p: float, df: int) -> None:
    assert t_quantile(p, df) == pytest.approx(closed_form(p, df), rel=1e-8, abs=1e-9)


@given(
    p=st.floats(min_value=1e-6, max_value=0.5, exclude_max=True),
    df=st.floats(min_value=1.0, max_value=1e5),
)
def test_t_quantile_is_symmetric_and_shrinks_as_df_grows(p: float, df: float) -> None:
    low = t_quantile(p, df)
    assert low < 0
    assert t_quantile(1 - p, df) == pytest.approx(-low, rel=1e-9, abs=1e-12)
    # (Near p = 0.5 the quantiles are ~1e-16, where only an absolute bound means much.)
    assert t_quantile(1 - p, df * 1.5) <= t_quantile(1 - p, df) * (1 + 1e-12) + 1e-12
    assert t_quantile(1 - p, df) >= statistics.NormalDist().inv_cdf(1 - p) * (1 - 1e-12) - 1e-12


def test_t_quantile_is_continuous_where_its_method_changes() -> None:
    # Below 10,000 df the beta function, from there the expansion around the normal.
    for p in (1e-6, 0.025, 0.3, 0.975):
        assert t_quantile(p, 9999.9999) == pytest.approx(t_quantile(p, 1e4), rel=1e-11)


def test_far_quantiles_of_a_fraction_of_a_degree_of_freedom_are_infinite() -> None:
    # With df = 0.001 the tail falls like t^-0.001: its 2.5% point is past every float.
    assert t_quantile(0.975, 0.001) == math.inf
    assert t_quantile(0.025, 0.001) == -math.inf
    assert math.isfinite(t_quantile(0.975, 0.5))
    assert t_quantile(0.975, 0.5) > t_quantile(0.975, 1)


@pytest.mark.parametrize(
    ("p", "df", "message"),
    [
        (0.0, 5, "p must lie"),
        (1.0, 5, "p must lie"),
        (math.nan, 5, "p must lie"),
        (0.5, 0.0, "degrees of freedom"),
        (0.5, -3, "degrees of freedom"),
        (0.5, math.nan, "degrees of freedom"),
    ],
)
def test_t_quantile_refuses_what_has_no_quantile(p: float, df: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        t_quantile(p, df)


# -- proportions --------------------------------------------------------------------


# Newcombe, "Two-sided confidence intervals for the single proportion: comparison of
# seven methods", Statistics in Medicine 17 (1998) 857-872, Table I, method 3 (the Wilson
# score interval without continuity correction).
@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombes_table(x: int, n: int, low: float, high: float) -> None:
    interval = proportion_interval(x, n)
    assert interval is not None
    assert interval.estimate == x / n
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=5e-5)


# Newcombe, "Interval estimation for the difference between independent proportions:
# comparison of eleven methods", Statistics in Medicine 17 (1998) 873-890, Table II,
# method 10 (the hybrid score interval). Example (a), 56/70 against 48/80, is the one the
# paper works through: difference 0.2, interval 0.0524 to 0.3339. By hand from the
# formula: the Wilson intervals are 0.6918-0.8770 for 56/70 and 0.4905-0.7004 for 48/80,
# so low = 0.2 - sqrt((0.8 - 0.6918)^2 + (0.7004 - 0.6)^2) = 0.0524 and high = 0.2 +
# sqrt((0.8770 - 0.8)^2 + (0.6 - 0.4905)^2) = 0.3339. The other rows reach the edges:
# a group with no (or all) conversions.
@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [
        (56, 70, 48, 80, 0.0524, 0.3339),
        (9, 10, 3, 10, 0.1705, 0.8090),
        (5, 56, 0, 29, -0.0381, 0.1926),
        (0, 10, 0, 20, -0.1611, 0.2775),
        (10, 10, 0, 20, 0.6791, 1.0),
    ],
)
def test_newcombe_interval_matches_the_published_examples(
    x1: int, n1: int, x2: int, n2: int, low: float, high: float
) -> None:
    interval = proportion_difference(x1, n1, x2, n2)
    assert interval is not None
    assert interval.estimate == pytest.approx(x1 / n1 - x2 / n2, abs=1e-15)
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=5e-5)


def test_the_wilson_intervals_worked_in_the_comment_above() -> None:
    first, second = proportion_interval(56, 70), proportion_interval(48, 80)
    assert first is not None and second is not None
    assert (first.low, first.high) == pytest.approx((0.6918, 0.8770), abs=5e-5)
    assert (second.low, second.high) == pytest.approx((0.4905, 0.7004), abs=5e-5)


def test_a_lower_level_gives_a_narrower_interval_inside_the_wider_one() -> None:
    wide, narrow = proportion_difference(56, 70, 48, 80), proportion_difference(56, 70, 48, 80, 0.8)
    assert wide is not None and narrow is not None
    assert wide.low < narrow.low < narrow.estimate < narrow.high < wide.high


@given(
    n1=st.integers(1, 5000),
    n2=st.integers(1, 5000),
    share1=st.floats(0, 1),
    share2=st.floats(0, 1),
    level=st.floats(0.5, 0.999),
)
def test_proportion_intervals_hold_their_estimate_and_stay_in_range(
    n1: int, n2: int, share1: float, share2: float, level: float
) -> None:
    x1, x2 = round(share1 * n1), round(share2 * n2)
    one = proportion_interval(x1, n1, level)
    difference = proportion_difference(x1, n1, x2, n2, level)
    assert one is not None and difference is not None
    assert 0.0 <= one.low <= one.estimate <= one.high <= 1.0
    assert -1.0 <= difference.low <= difference.estimate <= difference.high <= 1.0
    assert difference.low < difference.high  # never a point: the score interval is honest


def test_proportions_of_empty_groups_are_none() -> None:
    assert proportion_interval(0, 0) is None
    assert proportion_difference(0, 0, 3, 10) is None
    assert proportion_difference(3, 10, 0, 0) is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: proportion_interval(11, 10), "between 0 and the group's size 10"),
        (lambda: proportion_interval(-1, 10), "between 0 and the group's size 10"),
        (lambda: proportion_interval(0, -2), "cannot be negative"),
        (lambda: proportion_difference(1, 10, 21, 20), "group's size 20"),
        (lambda: proportion_difference(1, 10, 2, 20, level=1.0), "level must lie"),
        (lambda: proportion_interval(1, 10, level=0.0), "level must lie"),
    ],
)
def test_impossible_counts_are_refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# -- means --------------------------------------------------------------------------


def sums(values: list[float]) -> tuple[float, float, int]:
    return sum(values), sum(v * v for v in values), len(values)


SPENT = [3.0, 0.0, 7.5, 1.0, 0.0, 12.0, 0.0]
HELD_OUT = [0.0, 0.0, 2.0, 5.0, 0.0]


def test_welch_interval_matches_the_formula_worked_by_hand() -> None:
    mean1, mean2 = statistics.fmean(SPENT), statistics.fmean(HELD_OUT)
    share1 = statistics.variance(SPENT) / len(SPENT)
    share2 = statistics.variance(HELD_OUT) / len(HELD_OUT)
    df = (share1 + share2) ** 2 / (share1**2 / (len(SPENT) - 1) + share2**2 / (len(HELD_OUT) - 1))
    assert df == pytest.approx(8.9796364, abs=1e-6)  # between min(n) - 1 and n1 + n2 - 2
    half = t_quantile(0.975, df) * math.sqrt(share1 + share2)

    interval = mean_difference(*sums(SPENT), *sums(HELD_OUT))

    assert interval is not None
    assert interval.estimate == pytest.approx(mean1 - mean2, rel=1e-12)
    assert (interval.low, interval.high) == pytest.approx(
        (mean1 - mean2 - half, mean1 - mean2 + half), rel=1e-12
    )
    # and as SciPy's ttest_ind(equal_var=False).confidence_interval() printed it
    assert (interval.low, interval.high) == pytest.approx((-2.6179985, 6.5322842), abs=1e-6)


def test_mean_interval_matches_the_formula_worked_by_hand() -> None:
    half = t_quantile(0.975, len(SPENT) - 1) * statistics.stdev(SPENT) / math.sqrt(len(SPENT))
    interval = mean_interval(*sums(SPENT))
    assert interval is not None
    mean = statistics.fmean(SPENT)
    assert (interval.estimate, interval.low, interval.high) == pytest.approx(
        (mean, mean - half, mean + half), rel=1e-12
    )
    assert (interval.low, interval.high) == pytest.approx((-0.9701922, 7.6844779), abs=1e-6)


def test_one_constant_group_leaves_the_other_groups_degrees_of_freedom() -> None:
    constant = [4.0] * 50
    interval = mean_difference(*sums(SPENT), *sums(constant))
    assert interval is not None
    se = statistics.stdev(SPENT) / math.sqrt(len(SPENT))
    assert interval.high - interval.estimate == pytest.approx(t_quantile(0.975, 6) * se)


def test_two_constant_groups_give_the_difference_itself() -> None:
    interval = mean_difference(*sums([2.5] * 4), *sums([0.0] * 9))
    assert interval == Interval(2.5, 2.5, 2.5)
    assert mean_interval(*sums([0.0] * 30)) == Interval(0.0, 0.0, 0.0)


def test_rounding_below_zero_in_the_variance_is_read_as_zero() -> None:
    s, ss, n = sums([76.1] * 17)
    assert ss - s * s / n < 0  # the rounding this test is about
    one = mean_interval(s, ss, n)
    both = mean_difference(s, ss, n, s, ss, n)
    assert one is not None and both is not None
    assert one.low == one.estimate == one.high == pytest.approx(76.1)
    assert both.low == both.high == pytest.approx(0.0, abs=1e-12)


def test_sums_that_no_figures_could_give_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot come from one group's figures"):
        mean_interval(10.0, 1.0, 2)  # two figures summing to 10 have squares >= 50
    with pytest.raises(ValueError, match="sum of squares must be a finite number"):
        mean_difference(1.0, math.inf, 3, 1.0, 1.0, 3)
    with pytest.raises(ValueError, match="cannot be negative"):
        mean_difference(1.0, 1.0, -3, 1.0, 1.0, 3)
    with pytest.raises(ValueError, match="level must lie"):
        mean_interval(1.0, 1.0, 3, level=1.5)


def test_means_of_fewer_than_two_customers_are_none() -> None:
    assert mean_interval(5.0, 25.0, 1) is None
    assert mean_interval(0.0, 0.0, 0) is None
    assert mean_difference(5.0, 25.0, 1, *sums(SPENT)) is None
    assert mean_difference(*sums(SPENT), 0.0, 0.0, 0) is None


revenues = st.lists(st.one_of(st.just(0.0), st.floats(0.01, 1e5)), min_size=2, max_size=60)


@given(first=revenues, second=revenues, level=st.floats(0.5, 0.999))
def test_mean_intervals_hold_their_estimate(
    first: list[float], second: list[float], level: float
) -> None:
    for interval in (
        mean_interval(*sums(first), level=level),
        mean_difference(*sums(first), *sums(second), level=level),
    ):
        assert interval is not None
        assert interval.low <= interval.estimate <= interval.high


# -- scaling ------------------------------------------------------------------------


def test_scaled_multiplies_each_bound() -> None:
    lift = Interval(0.04, 0.01, 0.07)
    assert scaled(lift, 1000) == Interval(40.0, 10.0, 70.0)
    assert scaled(lift, -2) == Interval(-0.08, -0.14, -0.02)
    assert scaled(None, 1000) is None
    with pytest.raises(ValueError, match="factor must be a finite number"):
        scaled(lift, math.nan)


# -- coverage -----------------------------------------------------------------------

RUNS = 400
SPEND = (3.0, 1.0)  # buyers spend lognormally: median e^3 ~ 20, mean e^3.5 ~ 33
MEAN_SPEND = math.exp(SPEND[0] + SPEND[1] ** 2 / 2)


def group(rng: random.Random, rate: float, n: int) -> tuple[int, float, float]:
    """One group's conversions, revenue sum and revenue sum of squares."""
    buyers, s, ss = 0, 0.0, 0.0
    for _ in range(n):
        if rng.random() < rate:
            buyers += 1
            spent = rng.lognormvariate(*SPEND)
            s, ss = s + spent, ss + spent * spent
    return buyers, s, ss


def coverage(rng: random.Random, rate1: float, rate2: float) -> tuple[float, float]:
    """The share of simulated campaigns (messaged 300, held out 200) whose conversion
    and revenue intervals contain the true difference."""
    n1, n2 = 300, 200
    true_conversion, true_revenue = rate1 - rate2, (rate1 - rate2) * MEAN_SPEND
    hits_conversion = hits_revenue = 0
    for _ in range(RUNS):
        x1, s1, ss1 = group(rng, rate1, n1)
        x2, s2, ss2 = group(rng, rate2, n2)
        conversion = proportion_difference(x1, n1, x2, n2)
        revenue = mean_difference(s1, ss1, n1, s2, ss2, n2)
        assert conversion is not None and revenue is not None
        hits_conversion += conversion.low <= true_conversion <= conversion.high
        hits_revenue += revenue.low <= true_revenue <= revenue.high
    return hits_conversion / RUNS, hits_revenue / RUNS


def test_intervals_contain_a_real_effect_about_95_times_in_100() -> None:
    conversion, revenue = coverage(random.Random(30), 0.14, 0.10)
    assert LEVEL == 0.95
    assert 0.92 <= conversion <= 0.98
    assert 0.92 <= revenue <= 0.98


def test_intervals_contain_zero_about_95_times_in_100_when_nothing_works() -> None:
    conversion, revenue = coverage(random.Random(31), 0.12, 0.12)
    assert 0.92 <= conversion <= 0.98
    assert 0.92 <= revenue <= 0.98
