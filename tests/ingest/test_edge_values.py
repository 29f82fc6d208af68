"""Values at the edges: a row the 202 counts as valid is a row stored, and a value the
database cannot hold or crmd cannot compute with is refused with its line and column."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import bson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmd.app import Crmd
from crmd.campaigns.template import parse_template, render
from crmd.ingest.errors import RowError
from crmd.ingest.headers import match_columns
from crmd.ingest.persist import record_fields
from crmd.ingest.rows import attr_value, validate
from tests.conftest import examples
from tests.ingest.conftest import upload, wait_done

CUSTOMER_HEADER = ["name", "email", "spend", "visits", "lastActive", "tier"]
COLUMNS = match_columns(CUSTOMER_HEADER, "customers")
ORDER_COLUMNS = match_columns(["customerEmail", "amount", "orderDate"], "orders")
FOUR_HUNDRED_DIGITS = "9" * 400


@pytest.mark.parametrize(
    ("values", "column", "code"),
    [
        (["A", "a@x.io", "", str(2**63), "", ""], "visits", "too_large"),
        (["A", "a@x.io", "", "1" + "0" * 25, "", ""], "visits", "too_large"),
        (["A", "a@x.io", "", FOUR_HUNDRED_DIGITS, "", ""], "visits", "too_large"),
        (["A", "a@x.io", FOUR_HUNDRED_DIGITS, "", "", ""], "spend", "too_large"),
        (["A", "a@x.io", "1" + "0" * 20, "", "", ""], "spend", "too_large"),
        (
            ["A", "a@x.io", "", "", "0001-01-01T00:00:00+05:30", ""],
            "lastActive",
            "date_out_of_range",
        ),
        (
            ["A", "a@x.io", "", "", "9999-12-31T23:00:00-05:00", ""],
            "lastActive",
            "date_out_of_range",
        ),
        (["A", "a@x.io", "", "", "0999-12-31", ""], "lastActive", "date_out_of_range"),
    ],
)
def test_values_beyond_what_is_stored_are_row_errors(values: list[str], column: str, code: str):
    result = validate(values, 7, "customers", COLUMNS)
    assert isinstance(result, RowError)
    assert (result.line, result.column, result.code) == (7, column, code)


def test_order_amounts_and_dates_at_the_edges_are_row_errors():
    for values, column in [
        (["a@x.io", FOUR_HUNDRED_DIGITS, "2024-01-01"], "amount"),
        (["a@x.io", "10", "9999-12-31T23:59:59-01:00"], "orderDate"),
    ]:
        result = validate(values, 3, "orders", ORDER_COLUMNS)
        assert isinstance(result, RowError) and result.column == column


def test_the_largest_values_kept_are_stored_and_rendered():
    row = validate(
        ["A", "a@x.io", "9007199254740991", "9,007,199,254,740,991", "9999-12-30", ""],
        2,
        "customers",
        COLUMNS,
    )
    assert not isinstance(row, RowError)
    bson.encode(record_fields(row))
    assert render(parse_template("{spend} {visits}"), record_fields(row)) == (
        "9,007,199,254,740,991 9,007,199,254,740,991"
    )


def test_long_digit_strings_and_codes_stay_text_in_attributes():
    assert attr_value(FOUR_HUNDRED_DIGITS) == FOUR_HUNDRED_DIGITS
    assert attr_value("1234567890123456789") == "1234567890123456789"
    assert attr_value("00123") == "00123"
    assert attr_value("-1.5") == -1.5
    assert attr_value("9999-12-31T23:00:00-05:00") == "9999-12-31T23:00:00-05:00"
    assert attr_value("42\n") == "42\n"  # a number is the whole value, not a prefix


_numbers = st.one_of(
    st.just(""),
    st.integers(min_value=0, max_value=10**30).map(str),
    st.integers(min_value=2**53 - 10, max_value=2**64).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(abs(f))),
    st.from_regex(r"[0-9]{1,3}(,[0-9]{3}){0,8}(\.[0-9]{1,30})?", fullmatch=True),
    st.from_regex(r"[0-9]{15,420}", fullmatch=True),
    st.sampled_from(["inf", "nan", "1e400", "0.0", "1e5", "NaN", "Infinity"]),
)
_dates = st.one_of(
    st.just(""),
    st.datetimes().map(lambda d: d.isoformat()),
    st.from_regex(
        r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])(T[0-2][0-9]:[0-5][0-9]"
        r"([+-](0[0-9]|1[0-3]):[0-5][0-9])?)?",
        fullmatch=True,
    ),
)
_rows = st.tuples(
    st.text(min_size=1, max_size=30).filter(str.strip),
    st.just("a@x.io"),
    _numbers,
    _numbers,
    _dates,
    st.one_of(_numbers, _dates, st.text(max_size=30)),
)


@settings(max_examples=examples(500), deadline=None)
@given(_rows)
def test_every_accepted_row_can_be_stored_and_rendered(values: tuple[str, ...]):
    result = validate(list(values), 2, "customers", COLUMNS)
    if isinstance(result, RowError):
        return
    fields = record_fields(result)
    bson.encode(fields)  # raises on anything MongoDB cannot hold
    for name in ("spend", "visits"):
        assert math.isfinite(fields[name]) and abs(fields[name]) <= 2**53 - 1
    if fields["lastActive"] is not None:
        assert datetime(1000, 1, 1, tzinfo=UTC) <= fields["lastActive"]
    render(parse_template("{name} {spend} {visits} {attrs.tier|-}"), fields)


@pytest.mark.usefixtures("ingesting")
async def test_a_row_counted_valid_in_the_202_is_a_row_stored(client: Any, auth: Any, system: Crmd):
    text = (
        "name,email,spend,visits,lastActive,code\n"
        "Good,good@x.io,10,1,2024-01-01,00123\n"
        f"Huge visits,v@x.io,1,{2**63},,\n"
        f"Huge spend,s@x.io,{FOUR_HUNDRED_DIGITS},1,,\n"
        "Year one,y@x.io,1,1,0001-01-01T00:00:00+05:30,\n"
        "Year end,e@x.io,1,1,9999-12-31T23:00:00-05:00,\n"
        f"Also good,ok@x.io,2,2,2024-02-02,{FOUR_HUNDRED_DIGITS}\n"
    )
    response = await upload(client, auth, "customers", text)
    assert response.status == 202
    answer = await response.json()
    assert answer["rows"] == {"received": 6, "valid": 2, "rejected": 4}
    job = await wait_done(client, auth, answer["uploadId"])
    assert job["status"] == "done" and job["rows"]["persisted"] == 2
    assert [(e["line"], e["column"]) for e in job["errors"]] == [
        (3, "visits"),
        (4, "spend"),
        (5, "lastActive"),
        (6, "lastActive"),
    ]
    assert await system.db.customers.count_documents({}) == 2
    kept = await system.db.customers.find_one({"email": "ok@x.io"})
    assert kept["attrs"]["code"] == FOUR_HUNDRED_DIGITS
