"""The basic AI plugin's phrase parser on everyday audience sentences."""

from __future__ import annotations

import pytest
from crmd_basic_ai.phrases import rule_from_sentence

from crmd.segments.parse import parse_rule

SENTENCES = [
    ("haven't shopped in 6 months and spent over 5K", "lastActive < 180d AND spend > 5000"),
    (
        "customers in Delhi or Pune with more than 3 visits",
        'location in ("Delhi", "Pune") AND visits > 3',
    ),
    ("inactive for 90 days", "lastActive < 90d"),
    ("spent over 5000 and inactive for 3 months", "spend > 5000 AND lastActive < 90d"),
    ("spent more than 1 lakh", "spend > 100000"),
    ("spent more than 2L", "spend > 200000"),
    ("spent over ₹10,000", "spend > 10000"),
    ("spent over Rs. 2,500", "spend > 2500"),
    ("spent less than INR 500", "spend < 500"),
    ("customers who spent at least 1.5K", "spend >= 1500"),
    ("spent 5000 or more", "spend >= 5000"),
    ("spend under 1M", "spend < 1000000"),
    ("big spenders with purchases over 1 crore", "spend > 10000000"),
    ("haven't visited in two weeks", "lastActive < 14d"),
    ("have not ordered in a year", "lastActive < 365d"),
    ("dormant for 6 months", "lastActive < 180d"),
    ("no purchase in the last 45 days", "lastActive < 45d"),
    ("active in the last 7 days", "lastActive > 7d"),
    ("shopped within the past 2 weeks", "lastActive > 14d"),
    ("visited more than 10 times", "visits > 10"),
    ("fewer than 2 visits", "visits < 2"),
    ("at least 5 visits from Mumbai", 'visits >= 5 AND location = "Mumbai"'),
    ("more than 3 orders", "orderCount > 3"),
    ("ordered more than 5 times", "orderCount > 5"),
    ("customers from Bangalore", 'location = "Bangalore"'),
    ("people living in New Delhi", 'location = "New Delhi"'),
    ("customers in Delhi, Pune or Mumbai", 'location in ("Delhi", "Pune", "Mumbai")'),
    ("customers in Chennai who spent over 20k", 'location = "Chennai" AND spend > 20000'),
    ("lapsed for over 4 months with at most 1 visits", "lastActive < 120d AND visits <= 1"),
    ("spent above $300 and active in the last 30 days", "spend > 300 AND lastActive > 30d"),
    ("inactive since 1 year and spent more than 50K rupees", "lastActive < 365d AND spend > 50000"),
    ("exactly 2 visits", "visits = 2"),
]


@pytest.mark.parametrize(("sentence", "rule"), SENTENCES)
def test_sentences_become_rules(sentence: str, rule: str):
    assert rule_from_sentence(sentence) == rule
    parse_rule(rule)  # and every answer is a valid rule


@pytest.mark.parametrize("sentence", ["hello there", "make it pop", "", "the best ones"])
def test_sentences_it_cannot_read_give_nothing(sentence: str):
    assert rule_from_sentence(sentence) is None
