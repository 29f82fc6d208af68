"""The MongoDB filter and the Python evaluation agree, on random rules over random
customers in the real database (and every rule survives printing and parsing)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient

from crmd.segments.ast import (
    TIMES_KEPT,
    And,
    Compare,
    DateValue,
    EventCount,
    Exists,
    InList,
    Node,
    Not,
    Or,
    Relative,
)
from crmd.segments.compile import compile_rule
from crmd.segments.evaluate import evaluate
from crmd.segments.parse import parse_rule
from crmd.services.embedded import Urls
from crmd.store.indexes import INDEXES
from crmd.store.tenant import ScopedCollection
from tests.conftest import examples
from tests.segments.render import render

NOW = datetime(2025, 6, 15, 12, 30, 15, 123000, tzinfo=UTC)  # BSON keeps milliseconds
USER = "property-test-user"
NUMBERS = [0.0, 1.0, 2.0, 3.0, 5.0, 99.5, 100.0, 100.5, 10000.0, 10000.5]
TEXTS = [
    "Delhi",
    "delhi",
    "DELHI",
    "New Delhi",
    "Pune",
    "pune ",
    "Mumbai",
    "a.b",
    "x(y)",
    "ç",
    "",
    "Del",
]
AGES = [0.5, 1, 6.9, 7, 7.1, 30, 89.99, 90, 90.01, 180, 400]
DAYS = [
    datetime(2024, 5, 1, tzinfo=UTC),
    datetime(2024, 5, 1, 23, 59, tzinfo=UTC),
    datetime(2024, 5, 2, tzinfo=UTC),
    datetime(2024, 4, 30, 12, tzinfo=UTC),
]
MOMENTS = [NOW - timedelta(days=a) for a in AGES] + DAYS
EVENT_NAMES = ["buy", "sign-up:web"]
EVENT_AGES = [0.5, 1, 6.9, 7, 7.1, 29, 30, 31, 89.99, 90, 400, -0.5]
ATTR_VALUES: list[Any] = ["gold", "Gold", "silver", 5.0, 7.5, True, False, DAYS[0], "5"]


def customer(rng: random.Random, n: int) -> dict[str, Any]:
    def maybe(pool: list[Any], missing: float = 0.2) -> Any:
        return rng.choice(pool) if rng.random() > missing else None

    doc: dict[str, Any] = {"_id": f"c{n}", "userId": USER}
    for field, pool in (
        ("spend", NUMBERS),
        ("visits", NUMBERS),
        ("orderCount", NUMBERS),
        ("orderTotal", NUMBERS),
        ("lastActive", MOMENTS),
        ("lastOrderAt", MOMENTS),
        ("name", TEXTS),
        ("location", TEXTS),
        ("email", TEXTS),
        ("phone", TEXTS),
    ):
        value = maybe(pool)
        if value is not None:
            doc[field] = value
    doc["attrs"] = {k: v for k in ("tier", "points") if (v := maybe(ATTR_VALUES, 0.4)) is not None}
    times = {}
    for name in EVENT_NAMES:
        # As the events' writer keeps them: newest first, at most TIMES_KEPT; a few
        # customers at the cap.
        count = rng.choice([0, 0, 1, 2, 3, 4, 6, TIMES_KEPT])
        if count:
            picked = [NOW - timedelta(days=rng.choice(EVENT_AGES)) for _ in range(count)]
            times[name] = sorted(picked, reverse=True)
    if times or rng.random() < 0.5:
        doc["eventTimes"] = times
    return doc


@pytest.fixture(scope="module")
def population(services: Urls) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(services.mongodb, tz_aware=True)
    db = client[f"prop_{uuid.uuid4().hex[:10]}"]
    rng = random.Random(20261124)
    # The production indexes: query plans over them are part of what is tested.
    db.customers.create_indexes(list(INDEXES["customers"]))
    db.customers.insert_many([customer(rng, n) for n in range(150)])
    docs = list(db.customers.find({}))
    yield db.customers, docs
    client.drop_database(db.name)
    client.close()


numbers = st.sampled_from(NUMBERS)
texts = st.sampled_from(TEXTS)
dates = st.one_of(
    st.sampled_from([1, 7, 30, 90, 180]).map(Relative),
    st.sampled_from(DAYS).map(lambda d: DateValue(d.replace(hour=0, minute=0), True)),
    st.sampled_from(MOMENTS).map(lambda d: DateValue(d, False)),
)
NUMBER_FIELDS = ["spend", "visits", "orderCount", "orderTotal"]
TEXT_FIELDS = ["name", "location", "email", "phone"]
DATE_FIELDS = ["lastActive", "lastOrderAt"]


@st.composite
def comparisons(draw: st.DrawFn) -> Node:
    kind = draw(st.sampled_from(["number", "text", "date", "attr", "in", "exists", "event"]))
    if kind == "event":
        return EventCount(
            draw(st.sampled_from(EVENT_NAMES)),
            draw(st.sampled_from([">", ">=", "<", "<=", "=", "!="])),
            draw(st.sampled_from([0, 1, 2, 3, 5, 98, 99])),
            draw(st.sampled_from([None, 1, 7, 30, 90, 365])),
        )
    if kind == "number":
        return Compare(
            draw(st.sampled_from(NUMBER_FIELDS)),
            draw(st.sampled_from([">", ">=", "<", "<=", "=", "!="])),
            draw(numbers),
        )
    if kind == "text":
        return Compare(
            draw(st.sampled_from(TEXT_FIELDS)),
            draw(st.sampled_from(["=", "!=", "contains", "startswith", "endswith"])),
            draw(texts),
        )
    if kind == "date":
        return Compare(
            draw(st.sampled_from(DATE_FIELDS)),
            draw(st.sampled_from([">", ">=", "<", "<=", "=", "!="])),
            draw(dates),
        )
    if kind == "in":
        return InList(
            draw(st.sampled_from(TEXT_FIELDS)), draw(st.lists(texts, min_size=1, max_size=3))
        )
    field = draw(st.sampled_from(["attrs.tier", "attrs.points"]))
    if kind == "exists":
        return Exists(draw(st.sampled_from([field, *TEXT_FIELDS, "spend"])))
    value = draw(st.one_of(texts, numbers, st.booleans(), dates))
    ops = (
        ["=", "!="]
        if isinstance(value, bool)
        else ["=", "!=", "contains"]
        if isinstance(value, str)
        else [">", ">=", "<", "<=", "=", "!="]
    )
    return Compare(field, draw(st.sampled_from(ops)), value)


rules = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(And),
        st.lists(children, min_size=2, max_size=3).map(Or),
        children.map(Not),
    ),
    max_leaves=6,
)


@settings(
    max_examples=examples(500),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rule=rules)
def test_mongodb_and_python_agree(rule: Node, population: Any):
    collection, docs = population
    text = render(rule)
    assert parse_rule(text) == rule, text
    # Scoped exactly as the store scopes it: the plan (and its index) is what it is in use.
    query = ScopedCollection(collection, USER).scope(compile_rule(rule, NOW))
    from_python = {d["_id"] for d in docs if evaluate(rule, d, NOW)}
    # Both ways crmd asks: SecantusDB may plan a count and a find differently.
    assert {d["_id"] for d in collection.find(query)} == from_python, text
    assert collection.count_documents(query) == len(from_python), text
