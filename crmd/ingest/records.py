"""Records sent as JSON (``POST /api/v1/customers``, ``/orders``) to the same validated
rows a CSV file gives. Pure: JSON values in, rows or the items' errors out.

Each item is turned into what a CSV row would be (its keys a header, its values the
row's text) and handed to the CSV's own validation (``crmd.ingest.rows.validate``), so
that a record is accepted or refused for the same reasons whichever way it came. The
keys are matched to crmd's fields as a file's headers are (``crmd.ingest.headers``):
``externalId``, ``customer_external_id`` and ``Customer Id`` all name the same field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from crmd.errors import Unprocessable
from crmd.ingest.errors import RowError
from crmd.ingest.headers import CUSTOMER_FIELDS, ORDER_FIELDS, Columns, attr_name, normalise
from crmd.ingest.rows import CustomerRow, OrderRow, validate

ATTRS = "attrs"
"""A customer's key holding its custom attributes as an object (``{"tier": "gold"}``);
a top-level key that names no field is an attribute too, as a file's extra column is."""
MAX_KEYS = 100
"""Keys an item may have, as a file may have columns (``[ingest] max_columns``)."""
MAX_VALUE = 64 * 1024
"""Characters a value may have, as a file's field may (``[ingest] max_field_bytes``)."""
ERRORS_SHOWN = 100
"""Items' errors one answer lists (every bad item is counted in the message)."""


class ItemError(msgspec.Struct, frozen=True):
    """One refused item: its place in the batch, the key at fault (as the client wrote
    it), a code and a message."""

    index: int
    field: str
    code: str
    message: str


class Refused(Exception):
    """A key or value that no CSV cell could hold (an object, a nested list)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


def cell(value: Any, field: str, listed: bool = False) -> str:
    """A JSON value as the text a CSV cell would hold: numbers as written, booleans as
    ``true``/``false``, null as empty; a list only where ``listed`` (an order's items)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if len(value) > MAX_VALUE:
            raise Refused(field, "too_long", f"{field} is longer than {MAX_VALUE:,} characters")
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e15 else str(int(value))
    if isinstance(value, list) and listed:
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value):
            raise Refused(field, "invalid_items", "items must list names or codes")
        return msgspec.json.encode(value).decode()
    raise Refused(field, "not_a_value", f"{field} must be a string, a number or null")


def as_row(item: Mapping[str, Any], kind: str) -> tuple[list[str], Columns]:
    """The item as a CSV row and its header: each key matched to its field by the
    file's rules, the customer's other keys (and ``attrs``) its attributes. Raises
    Refused naming the key for two keys of one field or a value no cell holds."""
    if len(item) > MAX_KEYS:
        raise Refused("$", "too_many_keys", f"an item may have at most {MAX_KEYS} keys")
    row = _Row(CUSTOMER_FIELDS if kind == "customers" else ORDER_FIELDS)
    for key, value in item.items():
        if kind == "customers" and key == ATTRS and isinstance(value, Mapping):
            for name, inner in value.items():
                where = f"{ATTRS}.{name}"
                row.attr(where, cell(inner, where))
            continue
        field = row.aliases.get(normalise(key))
        if field is None and kind == "orders":
            known = ", ".join(row.spec)
            raise Refused(key, "unknown_field", f"{key!r} is not a field of an order ({known})")
        if field is None:
            row.attr(key, cell(value, key))
        else:
            row.field(field, key, cell(value, key, listed=field == "items"))
    if kind == "orders" and not {"customer_external_id", "customerEmail"} & set(row.fields):
        row.field("customer_external_id", "customer_external_id", "")  # the one to name
    return row.values, Columns(fields=row.fields, attrs=row.attrs, headers=row.headers)


class _Row:
    """A row being built from an item's keys: its header and values side by side."""

    def __init__(self, spec: Mapping[str, tuple[str, ...]]) -> None:
        self.spec = spec
        self.aliases = {alias: field for field, names in spec.items() for alias in names}
        self.headers: list[str] = []
        self.values: list[str] = []
        self.fields: dict[str, int] = {}
        self.attrs: dict[str, int] = {}
        self.named: dict[str, str] = {}

    def _add(self, key: str, text: str) -> int:
        self.headers.append(key)
        self.values.append(text)
        return len(self.headers) - 1

    def field(self, field: str, key: str, text: str) -> None:
        if field in self.named:
            raise Refused(
                key, "duplicate_field", f"{key!r} names {field}, as {self.named[field]!r} does"
            )
        self.named[field] = key
        self.fields[field] = self._add(key, text)

    def attr(self, key: str, text: str) -> None:
        name = attr_name(key.removeprefix(f"{ATTRS}."))
        if name in self.attrs:
            raise Refused(key, "duplicate_field", f"{key!r} names attribute {name!r} again")
        self.attrs[name] = self._add(key, text)


def validate_items(
    items: Sequence[Any], kind: str
) -> tuple[list[CustomerRow] | list[OrderRow], list[ItemError]]:
    """Every item as a row (``line``: its index + 1, so the later item for a key wins as
    the later line of a file does), and every item's first problem."""
    rows: list[Any] = []
    problems: list[ItemError] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            problems.append(ItemError(index, "$", "not_an_object", "each item must be an object"))
            continue
        try:
            values, columns = as_row(item, kind)
        except Refused as exc:
            problems.append(ItemError(index, exc.field, exc.code, exc.message))
            continue
        checked = validate(values, index + 1, kind, columns)
        if isinstance(checked, RowError):
            problems.append(ItemError(index, checked.column, checked.code, checked.message))
        else:
            rows.append(checked)
    return rows, problems


def refuse(problems: Sequence[ItemError], total: int) -> Unprocessable:
    """The batch's 422: nothing of it is accepted, and each bad item says why."""
    shown = [msgspec.structs.asdict(p) for p in problems[:ERRORS_SHOWN]]
    return Unprocessable(
        f"{len(problems)} of {total} items are invalid; nothing was accepted",
        details=shown,
        code="invalid_items",
    )
