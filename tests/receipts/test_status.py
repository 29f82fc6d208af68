"""Status precedence: the result never depends on the order receipts arrive in."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from crmd.messages import RANK
from crmd.receipts.status import Outcome, fold, merge

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_late_sent_never_overrides_delivered_or_failed():
    assert fold([("DELIVERED", at(5)), ("SENT", at(1))]).status == "DELIVERED"
    assert fold([("FAILED", at(5)), ("SENT", at(9))]).status == "FAILED"


def test_failures_are_final():
    assert fold([("FAILED", at(1)), ("DELIVERED", at(2)), ("CLICKED", at(3))]).status == "FAILED"
    assert fold([("BOUNCED", at(2)), ("FAILED", at(1))]).status == "BOUNCED"


def test_every_permutation_gives_the_same_outcome():
    receipts = [
        ("SENT", at(1)),
        ("DELIVERED", at(3)),
        ("OPENED", at(7)),
        ("SENT", at(2)),
        ("CLICKED", at(9)),
    ]
    result = fold(receipts)
    assert all(fold(p) == result for p in itertools.permutations(receipts))
    assert result.status == "CLICKED"
    assert result.first_seen["SENT"] == at(1)


def test_the_same_receipt_fifty_times_is_one_change():
    once = merge(Outcome(), "DELIVERED", at(4))
    assert fold([("DELIVERED", at(4))] * 50) == once


receipt = st.tuples(st.sampled_from(list(RANK)), st.integers(0, 100).map(at))


@given(st.lists(receipt, max_size=8), st.randoms())
def test_order_never_matters(receipts, rng):
    shuffled = list(receipts)
    rng.shuffle(shuffled)
    assert fold(receipts) == fold(shuffled)
    if receipts:
        status = fold(receipts).status
        assert RANK[status] == max(RANK[s] for s, _ in receipts)
        assert status != "SOFT_BOUNCED"  # reported, never held


def test_a_soft_bounce_keeps_the_status_and_its_first_time():
    outcome = fold([("SENT", at(1)), ("SOFT_BOUNCED", at(5)), ("SOFT_BOUNCED", at(3))])
    assert outcome.status == "SENT" and outcome.first_seen["SOFT_BOUNCED"] == at(3)
    assert fold([("COMPLAINED", at(9)), ("BOUNCED", at(2))]).status == "COMPLAINED"
