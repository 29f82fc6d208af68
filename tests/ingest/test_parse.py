"""Parsing and validation, without I/O: every bad input and every accepted quirk."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crmd.ingest.errors import FileProblem, RowError
from crmd.ingest.headers import match_columns
from crmd.ingest.parse import Limits, Summary, parse_upload
from crmd.ingest.rows import CustomerRow, OrderRow

ORIGINAL_CUSTOMERS = (
    "customer_external_id,name,email,lastActive,location,phone,spend,visits\n"
    "C1,Asha Rao,asha@example.com,2024-05-01,Delhi,9999,12000.50,4\n"
    "C2,Ravi,not-an-email,2024-05-01,Pune,,100,1\n"
    "C3,Meera,meera@example.com,2024-13-01,Mumbai,,100,1\n"
    'C4,"Kapoor, Anil",anil@example.com,2024-04-01T10:00:00+05:30,"Delhi",,"1,500",2\n'
)


class Collect:
    def __init__(self) -> None:
        self.rows: list[CustomerRow | OrderRow] = []
        self.chunks = 0
        self.rejected: list[tuple[RowError, list[str]]] = []

    def chunk(self, rows):
        self.rows.extend(rows)
        self.chunks += 1

    def reject(self, error, values):
        self.rejected.append((error, values))


def parse(
    data: bytes | str, kind: str = "customers", mapping=None, split: int = 7, **limits
) -> tuple[Summary, Collect]:
    raw = data.encode() if isinstance(data, str) else data
    pieces = [raw[i : i + split] for i in range(0, len(raw), split)]  # awkward chunk edges
    sink = Collect()
    summary = parse_upload(pieces, kind, mapping or {}, Limits(**limits), sink)
    return summary, sink


def test_original_customer_format_with_bad_rows_reported_by_line():
    summary, sink = parse(ORIGINAL_CUSTOMERS)
    assert (summary.received, summary.valid, summary.rejected) == (4, 2, 2)
    assert [(e.line, e.column, e.code) for e in summary.errors] == [
        (3, "email", "invalid_email"),
        (4, "lastActive", "invalid_date"),
    ]
    asha, anil = sink.rows
    assert asha.spend == 12000.5 and asha.visits == 4 and asha.customer_external_id == "C1"
    assert asha.lastActive == datetime(2024, 5, 1, tzinfo=UTC)
    assert anil.name == "Kapoor, Anil" and anil.spend == 1500
    assert anil.lastActive == datetime(2024, 4, 1, 4, 30, tzinfo=UTC)
    assert sink.rejected[0][1][2] == "not-an-email"


def test_bom_crlf_and_no_final_newline():
    data = b"\xef\xbb\xbfname,email\r\nA,a@x.io\r\nB,b@x.io"
    summary, sink = parse(data, split=2)
    assert summary.valid == 2
    assert [r.email for r in sink.rows] == ["a@x.io", "b@x.io"]


def test_quoted_newlines_keep_line_numbers_right():
    data = 'name,email,notes\n"Multi\nLine",m@x.io,"a ""quoted"" note"\nBad,bad,\n'
    summary, sink = parse(data)
    assert sink.rows[0].name == "Multi\nLine"
    assert sink.rows[0].attrs == {"notes": 'a "quoted" note'}
    assert [(e.line, e.code) for e in summary.errors] == [(4, "invalid_email")]


def test_other_crm_export_aliases_and_custom_attributes():
    data = (
        "Full Name,Email Address,Total-Spend,visit_count,Last Visit,Mobile,Loyalty Tier\n"
        'Zoe,zoe@x.io,"2,000",3,2024-01-02T03:04:05Z,555,Gold\n'
    )
    _, sink = parse(data)
    [zoe] = sink.rows
    assert (zoe.name, zoe.spend, zoe.visits, zoe.phone) == ("Zoe", 2000, 3, "555")
    assert zoe.attrs == {"loyalty_tier": "Gold"}


def test_explicit_mapping_overrides_aliases():
    data = "Customer,Mail,Total Spent,spend\nQ,q@x.io,700,1\n"
    _, sink = parse(data, mapping={"name": "Customer", "email": "Mail", "spend": "Total Spent"})
    assert sink.rows[0].spend == 700
    assert sink.rows[0].attrs == {"spend": "1"}


def test_orders_by_external_id_or_email_with_items():
    data = (
        "orderId,customerEmail,orderAmount,date,items\n"
        'O1,a@x.io,99.5,2024-02-01,"shoe,sock"\n'
        'O2,b@x.io,10,2024-02-02,"[""hat"", 7]"\n'
        "O3,,10,2024-02-02,\n"
        "O4,c@x.io,-5,2024-02-02,\n"
    )
    summary, sink = parse(data, kind="orders")
    first, second = sink.rows
    assert first.items == ["shoe", "sock"] and first.order_external_id == "O1"
    assert second.items == ["hat", "7"]
    assert [(e.line, e.column, e.code) for e in summary.errors] == [
        (4, "customerEmail", "required"),
        (5, "orderAmount", "negative"),
    ]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ("", 422, "empty_file"),
        ("name,email,Name\n", 422, "duplicate_header"),
        ("name,phone\nA,1\n", 422, "missing_column"),
        ('name,email\n"unterminated,a@x.io\n', 422, "bad_csv"),
        (b"name,email\nA,\xff@x.io\n", 422, "invalid_utf8"),
    ],
)
def test_whole_file_problems(data, status, code):
    with pytest.raises(FileProblem) as err:
        parse(data)
    assert (err.value.status, err.value.code) == (status, code)


def test_invalid_utf8_names_its_line():
    with pytest.raises(FileProblem) as err:
        parse(b"name,email\nA,a@x.io\nB,\xc3(@x.io\n")
    assert err.value.line == 3


def test_limits():
    rows = "name,email\n" + "".join(f"N{i},n{i}@x.io\n" for i in range(5))
    with pytest.raises(FileProblem) as err:
        parse(rows, max_rows=4)
    assert (err.value.status, err.value.code, err.value.line) == (413, "too_many_rows", 6)
    with pytest.raises(FileProblem) as err:
        parse(rows, max_bytes=20)
    assert err.value.status == 413
    with pytest.raises(FileProblem) as err:
        parse(",".join(f"c{i}" for i in range(101)) + "\n")
    assert err.value.code == "too_many_columns"
    with pytest.raises(FileProblem) as err:
        parse("name,email\n" + "x" * 70_000 + ",a@x.io\n")
    assert err.value.code == "field_too_large"


def test_rows_are_chunked():
    rows = "name,email\n" + "".join(f"N{i},n{i}@x.io\n" for i in range(1203))
    summary, sink = parse(rows, chunk_rows=500, split=4096)
    assert (summary.chunks, sink.chunks, len(sink.rows)) == (3, 3, 1203)


def test_mapping_to_a_missing_column_is_refused():
    columns_error = None
    try:
        match_columns(["name", "email"], "customers", {"spend": "Total"})
    except FileProblem as exc:
        columns_error = exc
    assert columns_error is not None and columns_error.code == "bad_mapping"


def test_a_line_longer_than_any_record_can_be_is_refused_early():
    endless = "name,email\n" + "x" * 50_000
    with pytest.raises(FileProblem) as err:
        parse(endless, split=1000, max_columns=2, max_field_bytes=10_000)
    assert (err.value.code, err.value.line) == ("line_too_long", 2)
