"""An event as posted, checked without a server: every problem with its field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crmd.config import EventsConfig
from crmd.events.checks import PostedEvent, Problem, check_item, depth_of, items_of

NOW = datetime(2026, 12, 7, 8, tzinfo=UTC)
SETTINGS = EventsConfig()


def problems(raw: object) -> list[tuple[str, str]]:
    checked = check_item(3, raw, SETTINGS, NOW)
    assert isinstance(checked, list), checked
    assert all(p.index == 3 for p in checked)
    return [(p.field, p.message) for p in checked]


def test_a_good_event_passes_with_its_values():
    checked = check_item(
        0,
        {"customer": "C1", "name": "order:paid-2", "properties": {"a": [1, {"b": None}]}},
        SETTINGS,
        NOW,
    )
    assert isinstance(checked, PostedEvent)
    assert checked.name == "order:paid-2"
    assert checked.properties == {"a": [1, {"b": None}]}


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ({"customer": "C1", "name": "has space"}, "name", "name must be 1 to 64 characters"),
        ({"customer": "C1", "name": "a.b"}, "name", "name must be 1 to 64"),
        ({"customer": "C1", "name": "x" * 65}, "name", "name must be 1 to 64"),
        ({"customer": "C1", "name": ""}, "name", "name must be 1 to 64"),
        ({"customer": "C1", "name": 5}, "name", "Expected `str`"),
        ({"name": "x"}, "customer", "missing required field"),
        ({"customer": "", "name": "x"}, "customer", "length >= 1"),
        ({"customer": "C1", "name": "x", "extra": 1}, "extra", "unknown field"),
        ({"customer": "C1", "name": "x", "properties": [1]}, "properties", "Expected `object`"),
        ({"customer": "C1", "name": "x", "timestamp": "soon"}, "timestamp", "datetime"),
        ({"customer": "C1", "name": "x", "id": ""}, "id", "length >= 1"),
        (
            {"customer": "C1", "name": "x", "timestamp": "2031-01-01T00:00:00Z"},
            "timestamp",
            "more than an hour in the future",
        ),
        (
            {"customer": "C1", "name": "x", "timestamp": "2019-01-01T00:00:00"},
            "timestamp",
            "older than the 365 days events are kept",
        ),
        (
            {"customer": "C1", "name": "x", "properties": {"big": "x" * 20_000}},
            "properties",
            "properties take 20,010 bytes as JSON; at most 16,384",
        ),
        (
            {"customer": "C1", "name": "x", "properties": {"a": {"b": {"c": {"d": {"e": {}}}}}}},
            "properties",
            "deeper than 5 levels",
        ),
        (
            {"customer": "C1", "name": "x", "properties": {"a": {"$where": 1}}},
            "properties",
            "properties.a has the name '$where'",
        ),
        (
            {"customer": "C1", "name": "x", "properties": {"a.b": 1}},
            "properties",
            "without '.', NUL or a leading '$'",
        ),
        (
            {"customer": "C1", "name": "x", "properties": {"n": [2**64]}},
            "properties",
            "properties.n[0] holds an integer larger than 64 bits",
        ),
    ],
)
def test_each_problem_names_its_field(raw, field, says):
    found = problems(raw)
    assert len(found) == 1, found
    assert found[0][0] == field
    assert says in found[0][1]


def test_a_timestamp_within_the_hour_ahead_and_the_retention_passes():
    for at in (NOW + timedelta(minutes=59), NOW - timedelta(days=364)):
        raw = {"customer": "C1", "name": "x", "timestamp": at.isoformat()}
        assert isinstance(check_item(0, raw, SETTINGS, NOW), PostedEvent)


def test_depth_counts_objects_and_arrays():
    assert depth_of(1, 5) == 0
    assert depth_of({}, 5) == 1
    assert depth_of({"a": [{"b": 1}]}, 5) == 3
    assert depth_of([[[[[[[[1]]]]]]]], 5) == 6  # counted no further than the limit + 1


def test_a_body_is_one_event_or_an_array_of_a_bounded_size():
    assert items_of({"a": 1}, 3) == [{"a": 1}]
    assert items_of([1, 2], 3) == [1, 2]
    assert items_of([], 3) == Problem(0, "$", "the array holds no event")
    too_many = items_of([{}] * 4, 3)
    assert isinstance(too_many, Problem) and "at most 3 events" in too_many.message
    assert isinstance(items_of("x", 3), Problem)
