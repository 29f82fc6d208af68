"""Message templates: placeholders, defaults, escapes, and errors with columns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crmd.campaigns.template import TemplateError, parse_template, render

ASHA = {
    "name": "Asha Rao",
    "email": "asha@x.io",
    "location": "Delhi",
    "spend": 12000.5,
    "visits": 4,
    "attrs": {
        "tier": "gold",
        "points": 120.0,
        "vip": True,
        "since": datetime(2023, 2, 1, tzinfo=UTC),
    },
}


@pytest.mark.parametrize(
    ("template", "customer", "message"),
    [
        ("Hi {first_name|there}!", ASHA, "Hi Asha!"),
        ("Hi {first_name|there}!", {"name": ""}, "Hi there!"),
        (
            "Hi {name}, you spent ₹{spend} in {visits} visits",
            ASHA,
            "Hi Asha Rao, you spent ₹12,000.50 in 4 visits",
        ),
        ("{attrs.tier|standard} member since {attrs.since}", ASHA, "gold member since 2023-02-01"),
        ("{attrs.tier|standard}", {"attrs": {}}, "standard"),
        ("{attrs.points} points, vip: {attrs.vip}", ASHA, "120 points, vip: yes"),
        ("{{literal}} {email}", ASHA, "{literal} asha@x.io"),
        ("Mail us at {location|HQ}", {"location": None}, "Mail us at HQ"),
        ("{spend}", {"spend": 3.0}, "3"),
    ],
)
def test_messages_are_personalised(template, customer, message):
    assert render(parse_template(template), customer) == message


@pytest.mark.parametrize(
    ("template", "fragment", "column"),
    [
        ("Hi {firstname}", "unknown placeholder {firstname} at column 4", 4),
        ("Hi {first_name", "unclosed '{' at column 4", 4),
        ("Hi } there", "unmatched '}' at column 4", 4),
        ("  ", "the message is empty", 1),
        ("{attrs.}", "unknown placeholder {attrs.}", 1),
        ("x" * 1001, "longer than 1000", 1001),
    ],
)
def test_bad_templates_are_refused_with_a_column(template, fragment, column):
    with pytest.raises(TemplateError) as err:
        parse_template(template)
    assert fragment in err.value.message
    assert err.value.column == column


@pytest.mark.parametrize(
    "value",
    [float("inf"), float("-inf"), float("nan"), 10**400, float(2**60), "x" * 5000],
)
def test_a_stored_value_that_cannot_be_written_takes_the_default(value):
    customer = {"name": "Asha", "spend": value, "attrs": {"x": value}}
    parts = parse_template("{first_name}: {spend|n/a} / {attrs.x|-}")
    assert render(parts, customer) == "Asha: n/a / -"
