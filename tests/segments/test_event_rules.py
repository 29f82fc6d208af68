"""Event counts in rules (``event.<name>.count <op> N [in 30d]``): what they parse to,
what they compile to, and every mistake named with its column."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crmd.segments.ast import And, Compare, EventCount, Not
from crmd.segments.compile import compile_rule
from crmd.segments.evaluate import evaluate
from crmd.segments.parse import RuleError, parse_rule

NOW = datetime(2026, 12, 7, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rule", "tree"),
    [
        ("event.purchase.count > 2 in 30d", EventCount("purchase", ">", 2, 30)),
        ("event.purchase.count >= 1", EventCount("purchase", ">=", 1)),
        ("event.sign-up:web.count == 0", EventCount("sign-up:web", "=", 0)),
        ("EVENT.Viewed_Item.COUNT != 3 in 2w", EventCount("Viewed_Item", "!=", 3, 14)),
        ("event.order.count <= 99 in 1y", EventCount("order", "<=", 99, 365)),
        (
            "spend > 100 AND NOT event.open.count < 5 in 3m",
            And([Compare("spend", ">", 100.0), Not(EventCount("open", "<", 5, 90))]),
        ),
    ],
)
def test_event_counts_parse_to_their_trees(rule, tree):
    assert parse_rule(rule) == tree


@pytest.mark.parametrize(
    ("rule", "message", "column"),
    [
        ("event.buy.count > 2 in 30x", "unknown unit 'x' at column 26", 26),
        ("event.buy.count > 2 in 30days", "unknown unit 'days' at column 26", 26),
        ("event.buy.count > -1", "an event count cannot be negative (column 19)", 19),
        ("event.buy.count > 2 in", "expected a duration after in", 23),
        ("event.buy.count > 2 in 30", "unexpected '30' at column 24: expected a duration", 24),
        ("event.buy.count > 100", "an event count goes up to 99 (column 19)", 19),
        ("event.buy.count > 1.5", "an event count is a whole number (column 19)", 19),
        ("event.buy.count > 2 in 0d", "the window at column 24 must be at least a day", 24),
        ("event.buy.count", "unexpected end of rule at column 16: expected a comparison", 16),
        ("event.buy.count contains 2", "expected a comparison (> >= < <= = !=)", 17),
        ('event.buy.count = "2"', "expected a whole number of times", 19),
        ("event..count > 1", "expected an event's name after 'event.' at column 7", 7),
        ("event.buy.sum > 1", "expected '.count' after 'event.buy' at column 10", 10),
        ("event.buy > 1", "expected '.count' after 'event.buy' at column 10", 10),
        ("event.b@d.count > 1", "'b@d' at column 7 is not an event name", 7),
        ("event." + "x" * 65 + ".count > 1", "is not an event name: it takes 1 to 64", 7),
        ("exists event.buy.count", "expected a field name", 8),
    ],
)
def test_malformed_event_counts_name_the_problem_and_column(rule, message, column):
    with pytest.raises(RuleError) as err:
        parse_rule(rule)
    assert message in err.value.message
    assert err.value.column == column


def test_at_least_k_in_a_window_is_the_kth_newest_time_in_it():
    start = NOW - timedelta(days=30)
    assert compile_rule(parse_rule("event.buy.count > 2 in 30d"), NOW) == {
        "eventTimes.buy.2": {"$gte": start}
    }
    assert compile_rule(parse_rule("event.buy.count < 3"), NOW) == {
        "$nor": [{"eventTimes.buy.2": {"$exists": True}}]
    }
    assert compile_rule(parse_rule("event.buy.count = 1 in 30d"), NOW) == {
        "$and": [
            {"eventTimes.buy.0": {"$gte": start}},
            {"$nor": [{"eventTimes.buy.1": {"$gte": start}}]},
        ]
    }


@pytest.mark.parametrize(
    ("rule", "ages", "holds"),
    [
        ("event.buy.count > 2 in 30d", [1, 2, 3], True),
        ("event.buy.count > 2 in 30d", [1, 2, 31], False),
        ("event.buy.count > 2", [1, 2, 31], True),
        ("event.buy.count = 0", [], True),
        ("event.buy.count = 0 in 7d", [8, 9], True),
        ("event.buy.count != 2 in 7d", [1, 6.9], False),
        ("event.buy.count < 1", [400], False),
    ],
)
def test_the_python_reference_counts_times_in_the_window(rule, ages, holds):
    times = sorted((NOW - timedelta(days=a) for a in ages), reverse=True)
    doc = {"eventTimes": {"buy": times}} if times else {}
    assert evaluate(parse_rule(rule), doc, NOW) is holds
