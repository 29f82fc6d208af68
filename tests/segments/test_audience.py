"""A rule's audience costs the user's own customers: an AND of comparisons goes to the
database as one flat filter (which SecantusDB answers from the user's index), anything
else is tested in Python on the user's customers; both count what the reference
evaluator counts, and neither sees another tenant."""

from __future__ import annotations

from typing import Any

import pytest

from crmd.app import Crmd
from crmd.segments.audience import audience, flat_filter
from crmd.segments.evaluate import evaluate
from crmd.segments.parse import parse_rule
from crmd.segments.query import InvalidRule, rule_filter, rule_now
from crmd.store.tenant import TenantStore


@pytest.mark.parametrize(
    ("rule", "flat"),
    [
        ("spend > 1", {"spend": {"$gt": 1.0}}),
        ("spend > 1 AND visits > 0", {"spend": {"$gt": 1.0}, "visits": {"$gt": 0.0}}),
        (
            "spend > 1 AND spend <= 5 AND visits >= 2",
            {"spend": {"$gt": 1.0, "$lte": 5.0}, "visits": {"$gte": 2.0}},
        ),
        ("spend > 1 AND spend > 2", None),  # the same operator twice: not merged
        ('name = "x" OR spend > 0', None),
        ("spend > 1 AND (visits > 0 OR visits < 1)", None),
    ],
)
def test_an_and_of_comparisons_is_one_flat_filter(rule: str, flat: Any):
    merged = flat_filter(rule_filter(rule))
    assert merged == flat
    if merged is not None:
        assert not any(key.startswith("$") for key in merged)


RULES = [
    "spend > 100",
    "spend > 100 AND visits > 1",
    "spend >= 50 AND spend < 300",
    'location = "Delhi" OR spend > 400',
    "NOT (visits > 2) AND spend > 0",
    'name != "P3" OR visits = 0',
]


@pytest.mark.parametrize("rule", RULES)
async def test_both_ways_count_what_the_reference_counts_for_the_user_alone(
    system: Crmd, rule: str
):
    mine = [
        {
            "_id": f"m{i}",
            "userId": "me",
            "n": i,
            "name": f"P{i}",
            "spend": i * 37 % 500,
            "visits": i % 4,
            "location": "Delhi" if i % 3 == 0 else "Pune",
        }
        for i in range(1, 41)
    ]
    theirs = [{**d, "_id": f"t{d['_id']}", "userId": "other"} for d in mine]
    await system.db.customers.insert_many(mine + theirs)
    now = rule_now()
    node = parse_rule(rule)
    expected = [d["_id"] for d in mine if evaluate(node, d, now)]
    size, sample, ids = await audience(
        TenantStore(system.db, "me")["customers"], rule, now, sample=3, ids=100
    )
    assert size == len(expected)
    assert sorted(ids) == sorted(expected)
    assert all(d["userId"] == "me" and d["_id"] in expected for d in sample)
    assert len(sample) == min(3, len(expected))


async def test_a_bad_rule_is_422_with_its_column(system: Crmd):
    with pytest.raises(InvalidRule) as raised:
        await audience(TenantStore(system.db, "me")["customers"], "spend >> 1")
    assert raised.value.column == 8
