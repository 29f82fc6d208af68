"""A CSV of addresses: each bad row reported with its line and column; a file that is not
such a CSV refused whole."""

from __future__ import annotations

import pytest

from crmd.suppressions.csvfile import CsvProblem, RejectedRow, parse_addresses
from crmd.suppressions.entries import Entry


def test_good_rows_become_entries_and_bad_rows_are_reported_by_line():
    body = (
        (
            "Name,E-Mail,Email,Reason\n"  # 'E-Mail' is not 'email': the third column is
            "Ann,x,Ann@Example.com,asked by phone\n"
            "\n"
            'Bob,x,"not an address",\n'
            '"Multi\nline",x,carl@example.com,\n'  # one record over two lines
            "Dee,x,,\n"
            "Eve,x,eve@example.com," + "r" * 201 + "\n"
            "Fay,x,fay@example.com\n"  # short row: no reason
        ).encode()
    )
    entries, rejected = parse_addresses(body)
    assert entries == [
        Entry("ann@example.com", "asked by phone", "import"),
        Entry("carl@example.com", "", "import"),
        Entry("fay@example.com", "", "import"),
    ]
    assert rejected == [
        RejectedRow(
            4, "email", "invalid_email", "email 'not an address' contains a space (U+0020)"
        ),
        RejectedRow(7, "email", "missing", "email is empty"),
        RejectedRow(8, "reason", "too_long", "reason is longer than 200 characters"),
    ]


def test_a_byte_order_mark_and_crlf_lines_are_fine():
    entries, rejected = parse_addresses(
        "\ufeffemail\r\na@example.com\r\nb@example.com\r\n".encode()
    )
    assert [e.email for e in entries] == ["a@example.com", "b@example.com"] and not rejected


@pytest.mark.parametrize(
    ("body", "status", "code", "line"),
    [
        (b"", 400, "empty_file", None),
        (b"name,phone\nAnn,1\n", 422, "missing_column", 1),
        (b"email,EMAIL\na@example.com,b@example.com\n", 422, "bad_header", 1),
        (b"email\na@example.com\nb\xff@example.com\n", 422, "bad_encoding", 3),
        (b'email\na@example.com\n"b@example.com\nc@example.com\n', 422, "bad_csv", 3),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(
    body: bytes, status: int, code: str, line: int | None
):
    with pytest.raises(CsvProblem) as refused:
        parse_addresses(body)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert refused.value.details == ({"line": line} if line else None)


def test_too_many_rows_are_refused_with_the_line_where_the_limit_was_passed():
    body = ("email\n" + "".join(f"p{i}@example.com\n" for i in range(4))).encode()
    with pytest.raises(CsvProblem) as refused:
        parse_addresses(body, max_rows=3)
    assert (refused.value.status, refused.value.code) == (413, "too_many_rows")
    assert refused.value.details == {"line": 5}
