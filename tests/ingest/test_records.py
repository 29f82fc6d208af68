"""JSON records to rows, without I/O: a record is accepted or refused exactly as the
same values in a CSV file would be, whatever key (name or alias) holds them."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmd.ingest.headers import CUSTOMER_FIELDS, ORDER_FIELDS
from crmd.ingest.records import cell, validate_items
from tests.ingest.test_parse import parse

VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "12",
            "1,200.50",
            "-3",
            "1e5",
            "2026-05-01",
            "2026-13-01",
            "2026-05-01T10:00Z",
            "a@x.io",
            "A@X.IO ",
            "not-an-email",
            "C1",
            "x" * 1001,
            "true",
            "shoe,sock",
            '["a", 2]',
            "[1,",
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
)


def csv_of(item: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(item.keys())
    writer.writerow(item.values())
    return out.getvalue()


def records(kind: str) -> st.SearchStrategy[dict[str, str]]:
    spec = CUSTOMER_FIELDS if kind == "customers" else ORDER_FIELDS
    required = (
        ("name", "email")
        if kind == "customers"
        else ("customer_external_id", "amount", "orderDate")
    )

    @st.composite
    def one(draw: Any) -> dict[str, str]:
        fields = set(required) | draw(st.sets(st.sampled_from(sorted(spec))))
        item = {}
        for field in sorted(fields):
            key = draw(st.sampled_from([field, *spec[field]]))  # any of its names
            item[key] = draw(VALUES)
        return item

    return one()


@pytest.mark.parametrize("kind", ["customers", "orders"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_record_fares_as_the_same_csv_row_does(kind: str, data: st.DataObject):
    item = data.draw(records(kind))
    summary, sink = parse(csv_of(item), kind)
    rows, problems = validate_items([item], kind)
    if summary.valid:
        assert not problems, (item, problems)
        as_csv = msgspec.structs.replace(sink.rows[0], line=1)
        assert rows == [as_csv]
    else:
        assert not rows
        (error,) = summary.errors
        assert [(p.index, p.field, p.code) for p in problems] == [(0, error.column, error.code)]


def test_json_values_become_the_text_a_cell_would_hold():
    assert [cell(v, "spend") for v in (12, 12.5, 1200.0, True, None, "x")] == [
        "12",
        "12.5",
        "1200",
        "true",
        "",
        "x",
    ]
    assert cell(["a", 2], "items", listed=True) == '["a",2]'


def test_aliases_attributes_and_what_no_cell_can_hold():
    item = {
        "Customer Id": "C1",
        "Full Name": "Ada",
        "E-mail": "ada@x.io",
        "Loyalty Tier": 2,
        "attrs": {"Opt In": False},
    }
    (row,), problems = validate_items([item], "customers")
    assert not problems
    assert row.customer_external_id == "C1" and row.name == "Ada"
    assert row.attrs == {"loyalty_tier": "2", "opt_in": "false"}
    bad = [
        {"name": "A", "email": "a@x.io", "nested": {"x": 1}},
        {"name": "A", "email": "a@x.io", "tier": 1, "attrs": {"Tier": 2}},
        {"name": "A", "email": "a@x.io", "items": ["x"]},
        {f"k{i}": "v" for i in range(101)},
    ]
    _, problems = validate_items(bad, "customers")
    assert [(p.index, p.field, p.code) for p in problems] == [
        (0, "nested", "not_a_value"),
        (1, "attrs.Tier", "duplicate_field"),
        (2, "items", "not_a_value"),
        (3, "$", "too_many_keys"),
    ]
    _, problems = validate_items(
        [{"customerId": "C1", "amount": 1, "orderDate": "2026-01-01", "items": [{"a": 1}]}],
        "orders",
    )
    assert [(p.field, p.code) for p in problems] == [("items", "invalid_items")]
