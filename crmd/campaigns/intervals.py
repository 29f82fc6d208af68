"""Confidence intervals for a campaign's effect: pure arithmetic on counts and sums.

A campaign's effect is measured per customer: conversion (0 or 1: did they order in the
attribution window) and revenue (their attributed orders, 0 for a customer who bought
nothing). The messaged group is compared with the held-out group, or one A/B variant
with another. Every function here takes counts and sums, returns an :class:`Interval` (or
``None`` when there are too few customers to say anything) and does no I/O.

Methods:

- :func:`proportion_interval`: the Wilson score interval of one proportion. Unlike the
  textbook ``p ± z·sqrt(p(1-p)/n)`` it stays inside [0, 1] and does not collapse to a
  point when nobody (or everybody) converted.
- :func:`proportion_difference`: Newcombe's hybrid score interval for ``p1 - p2``
  (method 10 of Newcombe, *Statistics in Medicine* 17, 1998, 873-890), which combines the
  two Wilson intervals. It behaves at 0 and 1 and with small groups, where the Wald
  interval is too narrow.
- :func:`mean_interval`: the t interval of one group's mean (df = n - 1).
- :func:`mean_difference`: Welch's interval for ``mean1 - mean2``, with the
  Welch-Satterthwaite degrees of freedom; it does not assume equal variances.

Assumptions: customers are independent of each other (one customer's order does not
cause another's), and each customer is counted once in exactly one group. The mean
intervals lean on the central limit theorem: the mean of revenue, mostly zeros with a
few skewed purchases, is taken to be roughly normal. That holds with a few dozen buyers
per group; with very few buyers (a handful, or one large order) the interval is too
narrow and its coverage below the nominal level, so report such a figure as fragile.
The revenue intervals are computed from sums and sums of squares, which is exact enough
for money (rounding only shows when the spread is ~1e-8 of the mean) and lets the store
aggregate without shipping each customer's figure.

The t quantile is computed here (no scipy): below 10,000 degrees of freedom, the t
distribution function through the regularized incomplete beta function, evaluated by
its continued fraction and inverted by Newton's method kept inside a bisection bracket;
from 10,000 on, the Cornish-Fisher expansion around the normal quantile. It agrees with
published tables to better than 1e-6 (with reference implementations to about 1e-10).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import msgspec

LEVEL = 0.95

# From this many degrees of freedom on, the t quantile comes from its expansion around
# the normal one (within 1e-14 there). Below it, from the beta function, whose
# continued fraction needs about sqrt(df) steps near the centre of the distribution.
_EXPANSION_DF = 1e4
_EPSILON = 1e-15
_TINY = 1e-300
# Quantiles past this (times sqrt(df)) are reported as infinite: t^2 / df would overflow.
_HUGE = 1e150


class Interval(msgspec.Struct, frozen=True):
    """An estimate with the bounds of its confidence interval (low <= estimate <= high)."""

    estimate: float
    low: float
    high: float


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile: the t with P(T <= t) = p for ``df`` degrees of freedom.

    ``p`` must lie in (0, 1) and ``df`` be positive (fractional df, as Welch's are, is
    fine); ``df = math.inf`` gives the normal quantile. Raises ValueError otherwise.
    Far below one degree of freedom the far quantiles pass 1e150 and come back as
    infinite; Welch's df is never below 1.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p!r}")
    if not df > 0.0:  # also refuses NaN
        raise ValueError(f"degrees of freedom must be positive, got {df!r}")
    if df >= _EXPANSION_DF:
        return _t_expansion(p, df)
    if p == 0.5:
        return 0.0
    # Solve in the smaller tail, so that p near 1 loses no digits to 1 - p.
    tail = min(p, 1.0 - p)
    t = _upper_tail_inverse(tail, df)
    return t if p > 0.5 else -t


def _t_expansion(p: float, df: float) -> float:
    """The t quantile for large df: the normal quantile z corrected by powers of 1/df
    (the Cornish-Fisher expansion, Abramowitz and Stegun 26.7.5); df = inf gives z."""
    z = NormalDist().inv_cdf(p)
    z2 = z * z
    g1 = z * (z2 + 1.0) / 4.0
    g2 = z * ((5.0 * z2 + 16.0) * z2 + 3.0) / 96.0
    g3 = z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / 384.0
    g4 = z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) / 92160.0
    return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df


def _upper_tail_inverse(tail: float, df: float) -> float:
    """The t >= 0 with P(T > t) = tail (0 < tail < 1/2)."""
    low, high = 0.0, max(1.0, -NormalDist().inv_cdf(tail))
    while _upper_tail(high, df) > tail:
        low, high = high, 2.0 * high
        if high > _HUGE * math.sqrt(df):  # only far below 1 df: the floats run out
            return math.inf
    t = 0.5 * (low + high)
    for _ in range(200):
        excess = _upper_tail(t, df) - tail  # > 0: t is too small
        if excess > 0.0:
            low = t
        else:
            high = t
        density = _density(t, df)
        candidate = t + excess / density if density > 0.0 else math.inf
        if not low < candidate < high:  # Newton left the bracket: bisect instead
            candidate = 0.5 * (low + high)
        if abs(candidate - t) <= 1e-14 * max(1.0, t) or high - low <= 1e-14 * high:
            return candidate
        t = candidate
    return t


def _upper_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0."""
    # x = df / (df + t^2) = 1 / (1 + u^2) and y = 1 - x, each with its log, computed
    # directly: through 1 - x or log(x) they would lose digits when t^2 << df.
    if t == 0.0:
        return 0.5
    u2 = t * t / df
    x, y = 1.0 / (1.0 + u2), 1.0 / (1.0 + 1.0 / u2)
    return 0.5 * _regularized_beta(df / 2.0, 0.5, x, y, -math.log1p(u2), -math.log1p(1.0 / u2))


def _density(t: float, df: float) -> float:
    log_norm = math.lgamma((df + 1.0) / 2.0) - math.lgamma(df / 2.0) - 0.5 * math.log(df * math.pi)
    u = t / math.sqrt(df)
    return math.exp(log_norm - (df + 1.0) / 2.0 * math.log1p(u * u))


def _regularized_beta(a: float, b: float, x: float, y: float, log_x: float, log_y: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for 0 < x < 1, given also
    y = 1 - x and the logs of both (the caller knows them more precisely than
    they can be recovered from x)."""
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * log_x + b * log_y
    # The continued fraction converges fast for x below the mean a/(a+b) (roughly);
    # above it, use I_x(a, b) = 1 - I_{1-x}(b, a).
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(y, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction 1/(1+ d1/(1+ d2/(1+ ...))) of I_x(a, b), evaluated by the
    modified Lentz method. Its coefficients: d_{2m+1} = -(a+m)(a+b+m)x / ((a+2m)(a+2m+1))
    and d_{2m} = m(b-m)x / ((a+2m-1)(a+2m))."""
    c = 1.0
    d = _nonzero(1.0 - (a + b) * x / (a + 1.0))
    d = 1.0 / d
    value = d
    for m in range(1, 10_000):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        for coefficient in (even, odd):
            d = 1.0 / _nonzero(1.0 + coefficient * d)
            c = _nonzero(1.0 + coefficient / c)
            value *= c * d
        if abs(c * d - 1.0) < _EPSILON:
            return value
    raise ArithmeticError(f"the incomplete beta fraction did not converge for {a}, {b}, {x}")


def _nonzero(value: float) -> float:
    return value if abs(value) > _TINY else _TINY


def _z(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    return NormalDist().inv_cdf((1.0 + level) / 2.0)


def _check_count(x: int, n: int) -> None:
    if n < 0:
        raise ValueError(f"a group's size cannot be negative, got {n}")
    if not 0 <= x <= n:
        raise ValueError(f"successes must lie between 0 and the group's size {n}, got {x}")


def _wilson(x: int, n: int, z: float) -> tuple[float, float]:
    p = x / n
    z2 = z * z
    centre = (x + z2 / 2.0) / (n + z2)
    half = z / (n + z2) * math.sqrt(x * (n - x) / n + z2 / 4.0)
    # Rounding can put a bound a hair past p (at x = 0 or n) or past [0, 1].
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


def proportion_interval(x: int, n: int, level: float = LEVEL) -> Interval | None:
    """The proportion ``x / n`` with its Wilson score interval; None when ``n < 1``."""
    z = _z(level)
    _check_count(x, n)
    if n < 1:
        return None
    low, high = _wilson(x, n, z)
    return Interval(x / n, low, high)


def proportion_difference(
    x1: int, n1: int, x2: int, n2: int, level: float = LEVEL
) -> Interval | None:
    """``x1/n1 - x2/n2`` with Newcombe's hybrid score interval (his method 10): each
    bound moves from the difference by the root of the two Wilson half-widths on the
    sides that push it that way. None when ``n1 < 1`` or ``n2 < 1``."""
    z = _z(level)
    _check_count(x1, n1)
    _check_count(x2, n2)
    if n1 < 1 or n2 < 1:
        return None
    p1, p2 = x1 / n1, x2 / n2
    low1, high1 = _wilson(x1, n1, z)
    low2, high2 = _wilson(x2, n2, z)
    difference = p1 - p2
    low = difference - math.hypot(p1 - low1, high2 - p2)
    high = difference + math.hypot(high1 - p1, p2 - low2)
    return Interval(difference, max(-1.0, low), min(1.0, high))


def _variance(s: float, ss: float, n: int) -> float:
    """The sample variance from a sum and a sum of squares, n >= 2.

    ``ss - s*s/n`` cancels badly when the spread is small beside the mean, and can come
    out a little below zero: that is rounding, read as 0. Far below zero, the sums cannot
    come from real figures and are refused.
    """
    for name, value in (("sum", s), ("sum of squares", ss)):
        if not math.isfinite(value):
            raise ValueError(f"the {name} must be a finite number, got {value!r}")
    square_of_sum = s * s / n
    centred = ss - square_of_sum
    if centred < 0.0:
        if -centred > 1e-9 * max(ss, square_of_sum):
            raise ValueError(
                f"the sum of squares {ss!r} is below sum^2/n = {square_of_sum!r}: "
                "these sums cannot come from one group's figures"
            )
        return 0.0
    return centred / (n - 1)


def mean_interval(s: float, ss: float, n: int, level: float = LEVEL) -> Interval | None:
    """The mean ``s / n`` with a t interval on n - 1 degrees of freedom, from the sum
    ``s`` and sum of squares ``ss`` of the group's ``n`` figures (zeros included). None
    when ``n < 2``; a zero variance gives the interval of the mean itself."""
    _z(level)  # checks the level
    if n < 0:
        raise ValueError(f"a group's size cannot be negative, got {n}")
    if n < 2:
        return None
    mean = s / n
    variance = _variance(s, ss, n)
    if variance == 0.0:
        return Interval(mean, mean, mean)
    half = t_quantile((1.0 + level) / 2.0, n - 1) * math.sqrt(variance / n)
    return Interval(mean, mean - half, mean + half)


def mean_difference(
    s1: float, ss1: float, n1: int, s2: float, ss2: float, n2: int, level: float = LEVEL
) -> Interval | None:
    """``mean1 - mean2`` with Welch's interval, from each group's sum, sum of squares and
    size (every customer counts, zeros included). The degrees of freedom are
    Welch-Satterthwaite's. None when ``n1 < 2`` or ``n2 < 2``; when both variances are
    zero the interval is the difference itself."""
    _z(level)  # checks the level
    for n in (n1, n2):
        if n < 0:
            raise ValueError(f"a group's size cannot be negative, got {n}")
    if n1 < 2 or n2 < 2:
        return None
    difference = s1 / n1 - s2 / n2
    share1 = _variance(s1, ss1, n1) / n1
    share2 = _variance(s2, ss2, n2) / n2
    total = share1 + share2
    if total == 0.0:
        return Interval(difference, difference, difference)
    # Written with the shares' fractions so that tiny variances do not underflow.
    f1, f2 = share1 / total, share2 / total
    df = 1.0 / (f1 * f1 / (n1 - 1) + f2 * f2 / (n2 - 1))
    half = t_quantile((1.0 + level) / 2.0, df) * math.sqrt(total)
    return Interval(difference, difference - half, difference + half)


def scaled(interval: Interval | None, factor: float) -> Interval | None:
    """The interval with its estimate and bounds multiplied by ``factor``: a per-customer
    lift times the messaged group's size is the campaign's incremental conversions or
    revenue. None stays None; a negative factor swaps the bounds, so low <= high holds."""
    if interval is None:
        return None
    if not math.isfinite(factor):
        raise ValueError(f"the factor must be a finite number, got {factor!r}")
    low, high = interval.low * factor, interval.high * factor
    return Interval(interval.estimate * factor, min(low, high), max(low, high))
