"""The trim floor, the one number that decides what XTRIM may drop."""

from hypothesis import given
from hypothesis import strategies as st

from crmd.streams.worker import format_id, parse_id, trim_floor

ids = st.tuples(st.integers(0, 10**13), st.integers(0, 100)).map(format_id)


def test_no_groups_means_nothing_may_go():
    assert trim_floor([]) is None


def test_a_group_that_read_nothing_holds_everything():
    assert trim_floor([("0-0", None), ("5-0", None)]) is None


def test_oldest_pending_entry_bounds_the_floor():
    assert trim_floor([("9-0", "3-1")]) == "3-1"


def test_undelivered_entries_bound_the_floor():
    assert trim_floor([("9-0", None), ("4-2", None)]) == "4-2"


@given(st.lists(st.tuples(ids, st.one_of(st.none(), ids)), min_size=1, max_size=6))
def test_floor_is_at_or_below_every_position_that_must_stay(groups):
    floor = trim_floor(groups)
    for last, oldest in groups:
        keep = [parse_id(last)] + ([parse_id(oldest)] if oldest else [])
        if floor is not None:
            assert all(parse_id(floor) <= k for k in keep)
    if floor is not None:
        assert any(
            parse_id(floor) in ([parse_id(last)] + ([parse_id(o)] if o else []))
            for last, o in groups
        )
