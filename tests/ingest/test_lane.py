"""The fast lane for customer rows gives what the precise path gives, row for row, and
sends it every row it cannot vouch for."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from crmd.ingest.errors import RowError
from crmd.ingest.headers import match_columns
from crmd.ingest.lane import CustomerLane
from crmd.ingest.parse import Limits, parse_upload
from crmd.ingest.rows import CustomerRow, validate
from tests.conftest import examples

HEADER = ["customer_external_id", "name", "email", "phone", "location", "spend", "visits",
          "lastActive", "tier", "Loyalty Code"]  # fmt: skip
COLUMNS = match_columns(HEADER, "customers", {})

# Values at the edges of what each path reads, typical ones among them.
TEXT = st.sampled_from(["", "Asha Rao", " Ravi ", "x" * 1000, "x" * 1001, "\u00a0Zoya", "\t"])
EMAIL = st.sampled_from(
    [
        "asha@example.com",
        " Asha.Rao@Example.COM ",
        "asha@example",
        "a@b@c.com",
        "",
        "zoë@example.com",
        "a\u200b@example.com",
        "\uff41sha@example.com",
        "x" * 250 + "@e.com",
        "first+tag@sub.example.co.in",
        ".a@x.co",
        "a..b@x.co",
        "a@-x.co",
        "a@x.co.",
        "o'brien@x.co",
        "x" * 65 + "@x.co",
    ]
)
NUMBER = st.sampled_from(
    ["", "0", "12", "12.50", "1,234.5", "007", "00", ".5", "5.", "-3", "1e5", "nan",
     "999999999999999", "9007199254740992", " 42 ", "٣", "1.2.3", "123456789012.125"]
)  # fmt: skip
DATES = ["", "2024-05-31", "2024-05-31T10:00:00Z", "2024-02-30T10:00:00Z", "0999-01-01T00:00:00Z",
         "9999-12-31T00:00:00Z", "9998-12-31T23:59:59.999Z", "2024-05-31T10:00:00+05:30",
         "2024-05-31t10:00:00z", "2024-05-31T24:00:00Z", "2024-05-31T10:00:60Z",
         " 2024-05-31T10:00:00.123Z ", "2024-05-31T10:00:00.1234", "2024-05-31T10:00:00.123Z",
         "2024-05-31T10:00:00", "2024-05-31T10:00:00.123", "2024-0531", "2024-05-31T10:00:0Z",
         "1000-01-01", "9998-12-31T23:59:59Z", "2024-05-31T10:00Z"]  # fmt: skip
DATE = st.one_of(
    st.sampled_from(DATES),
    st.text(alphabet="0123456789-:.TZ", min_size=20, max_size=20),
    st.text(alphabet="0123456789-:.TZ", min_size=24, max_size=24),
    st.text(alphabet="0123456789-:.TZ", min_size=10, max_size=10),
    st.text(alphabet="0123456789-:.TZ", min_size=19, max_size=19),
    st.text(alphabet="0123456789-:.TZ", min_size=23, max_size=23),
)
EDGES = (TEXT, TEXT, EMAIL, TEXT, TEXT, NUMBER, NUMBER, DATE, TEXT, TEXT)
ROW = st.tuples(*EDGES).map(list)
EDGED = st.lists(
    st.integers(0, len(EDGES) - 1).flatmap(lambda c: st.tuples(st.just(c), EDGES[c])),
    min_size=1,
    max_size=3,
).map(dict)
"""A few columns of a plain row set to edge values, so that each check is what decides."""


def precisely(run: list[list[str]], lines: list[int]) -> list[CustomerRow | RowError]:
    pairs = zip(run, lines, strict=True)
    return [validate(values, line, "customers", COLUMNS) for values, line in pairs]  # type: ignore[misc]


def through_lane(run: list[list[str]], lines: list[int]) -> list[CustomerRow | RowError]:
    """The lane's records and the precise path's rejections, in line order."""
    rejected: list[RowError] = []

    def precise(values: list[str], line: int) -> CustomerRow | None:
        result = validate(values, line, "customers", COLUMNS)
        if isinstance(result, RowError):
            rejected.append(result)
            return None
        return result  # type: ignore[return-value]

    rows: list[Any] = CustomerLane(COLUMNS).rows(run, lines, precise)
    return sorted(rows + rejected, key=lambda r: r.line)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(ROW, min_size=1, max_size=40))
def test_every_row_comes_out_as_the_precise_path_makes_it(run):
    lines = list(range(2, 2 + len(run)))
    assert through_lane(run, lines) == precisely(run, lines)


@settings(max_examples=examples(1500), deadline=None)
@given(st.integers(0, 2000), EDGED)
@example(3, {7: "2024-05-31T10:00:00.1234"})  # no zone: naive to msgspec, UTC to crmd
@example(3, {7: "2024-05-31T10:00:00.1234567Z"})  # msgspec rounds, crmd truncates
@example(3, {2: " Asha.Rao@Example.COM "})
def test_what_the_lane_vouches_for_is_what_the_precise_path_makes(n, edges):
    """A plain row with a few values at the edges, so that each check is what decides."""
    row = plain(n)
    for column, value in edges.items():
        row[column] = value
    typed = CustomerLane(COLUMNS)._typed([row], [2])
    if typed is not None:
        assert typed == precisely([row], [2])


def plain(n: int) -> list[str]:
    return [f"c{n}", f"Name {n}", f"P{n}@Example.com", "+9199", "Pune", f"{n}.25", str(n % 40),
            "2026-04-12T00:18:01Z", "gold" if n % 2 else "", ""]  # fmt: skip


def test_a_plain_run_is_typed_whole():
    run = [plain(n) for n in range(500)]
    asked: list[int] = []

    def precise(values: list[str], line: int) -> None:
        asked.append(line)

    rows = CustomerLane(COLUMNS).rows(run, list(range(2, 502)), precise)
    assert asked == []
    assert [r.line for r in rows] == list(range(2, 502))
    assert rows[3].spend == 3.25 and rows[3].visits == 3 and rows[3].attrs == {"tier": "gold"}
    assert rows[4].attrs == {} and rows[499].email == "p499@example.com"
    assert rows == precisely(run, list(range(2, 502)))


def test_one_bad_row_in_a_run_is_found_and_the_rest_kept():
    run = [plain(n) for n in range(500)]
    run[317][7] = "2026-02-30T00:00:00Z"  # passes every column check; msgspec refuses it
    asked: list[int] = []

    def precise(values: list[str], line: int) -> CustomerRow | None:
        asked.append(line)
        result = validate(values, line, "customers", COLUMNS)
        return None if isinstance(result, RowError) else result  # type: ignore[return-value]

    rows = CustomerLane(COLUMNS).rows(run, list(range(500)), precise)
    assert len(rows) == 499 and 317 not in [r.line for r in rows]
    assert 317 in asked and len(asked) < 8  # halved down to a few rows, not all 500


def test_an_upload_keeps_the_files_order_across_both_paths():
    """Rows of another width take the precise path between lane rows; the chunk holds
    the file's order, so the later row for a key still wins."""
    lines = [",".join(HEADER)]
    for n in range(30):
        values = plain(n % 7)  # keys repeat
        if n % 5 == 0:
            values = values[:9]  # a field short: the precise path
        lines.append(",".join(values))
    rows: list[Any] = []

    class Sink:
        def chunk(self, chunk: list[Any]) -> None:
            rows.extend(chunk)

        def reject(self, error: RowError, values: list[str]) -> None:
            raise AssertionError(error)

    summary = parse_upload(
        ["\n".join(lines).encode()], "customers", {}, Limits(chunk_rows=8), Sink()
    )
    assert summary.valid == 30 and summary.chunks == 4
    assert [r.line for r in rows] == list(range(2, 32))


def test_the_lane_closes_for_a_file_it_cannot_read():
    """Thousands separators in every row: the first run goes the precise way, and the
    rest of the file does not try the lane again."""
    lane = CustomerLane(COLUMNS)
    run = [plain(n) for n in range(100)]
    for row in run:
        row[5] = "1,234.50"
    asked: list[int] = []

    def precise(values: list[str], line: int) -> CustomerRow | None:
        asked.append(line)
        return validate(values, line, "customers", COLUMNS)  # type: ignore[return-value]

    rows = lane.rows(run, list(range(100)), precise)
    assert [r.spend for r in rows] == [1234.5] * 100 and len(asked) == 100
    assert lane.open is False
    assert CustomerLane(COLUMNS).open is True
