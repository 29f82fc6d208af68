"""One CSV row to one validated record. Pure: values in, a record or a RowError out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import msgspec

from crmd.emails import InvalidEmail, normalise_email
from crmd.ingest.errors import RowError
from crmd.ingest.headers import Columns
from crmd.store.limits import DATE_RANGE, MAX_NUMBER, number_in_range, to_utc

# Each pattern is matched whole (fullmatch): $ would also match before a final "\n".
_NUMBER = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_INTEGER = re.compile(r"\d{1,3}(?:,\d{3})+|\d+")
MAX_TEXT = 1000


AttrValue = str | float | bool | datetime
# No leading zeros: "00123" is a code (a PIN, an account), kept as text.
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9]\d{0,14})(?:\.\d{1,15})?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")


def attr_value(text: str) -> AttrValue:
    """A custom attribute typed from its text, so rules compare like with like:
    ``42`` and ``-1.5`` are numbers, ``true``/``false`` booleans, ISO dates dates, and
    anything else text. Digits a float cannot hold exactly (more than 15, or leading
    zeros) and dates crmd cannot compute with stay text: they are kept as written."""
    if _PLAIN_NUMBER.fullmatch(text):
        return float(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _ISO_DATE.fullmatch(text):
        try:
            return parse_date(text, "")
        except Invalid:
            return text
    return text


class CustomerRow(msgspec.Struct, array_like=True, omit_defaults=True):
    line: int
    name: str
    email: str
    customer_external_id: str = ""
    phone: str = ""
    location: str = ""
    spend: float = 0.0
    visits: int = 0
    lastActive: datetime | None = None
    attrs: dict[str, str] = {}

    @property
    def key(self) -> str:
        return f"x:{self.customer_external_id}" if self.customer_external_id else f"e:{self.email}"


class OrderRow(msgspec.Struct, array_like=True, omit_defaults=True):
    line: int
    amount: float
    orderDate: datetime
    customer_external_id: str = ""
    customerEmail: str = ""
    order_external_id: str = ""
    items: list[str] = []


class Invalid(Exception):
    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


def _text(value: str, field: str, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise Invalid(field, "required", f"{field} is required")
    if len(value) > MAX_TEXT:
        raise Invalid(field, "too_long", f"{field} is longer than {MAX_TEXT} characters")
    return value


def _email(value: str, field: str, required: bool) -> str:
    if not value.strip():
        if required:
            raise Invalid(field, "required", f"{field} is required")
        return ""
    try:
        return normalise_email(value)
    except InvalidEmail as exc:
        shown = value.strip(" ")[:80].encode("unicode_escape").decode()
        raise Invalid(field, "invalid_email", f"{field} '{shown}' {exc}") from None


def parse_number(value: str, field: str, integer: bool = False) -> float:
    """``1234``, ``1,234.50`` (thousands separators must group by three); never negative."""
    text = value.strip()
    if text.startswith("-"):
        raise Invalid(field, "negative", f"{field} must be 0 or more, not {text[:40]!r}")
    if not (_INTEGER if integer else _NUMBER).fullmatch(text):
        kind = "a whole number" if integer else "a number"
        raise Invalid(field, "not_a_number", f"{field} must be {kind}, not {text[:40]!r}")
    number = float(text.replace(",", ""))
    if not number_in_range(number):
        raise Invalid(field, "too_large", f"{field} is larger than {MAX_NUMBER:,}")
    return number


def parse_date(value: str, field: str) -> datetime:
    """``YYYY-MM-DD`` or ISO 8601 with or without time and zone; naive means UTC."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(
            field,
            "invalid_date",
            f"{field} must be a date like 2024-05-31 or 2024-05-31T10:00:00Z, not {text[:40]!r}",
        ) from None
    at = to_utc(parsed)
    if at is None:
        raise Invalid(
            field, "date_out_of_range", f"{field} must lie between {DATE_RANGE}, not {text[:40]!r}"
        )
    return at


def parse_items(value: str) -> list[str]:
    text = value.strip()
    if text.startswith("["):
        try:
            items = msgspec.json.decode(text, type=list[str | int | float])
        except (msgspec.DecodeError, RecursionError):
            raise Invalid("items", "invalid_items", "items is not a JSON list") from None
        except msgspec.ValidationError:
            raise Invalid("items", "invalid_items", "items must list names or codes") from None
        return [str(i) for i in items]
    return [part.strip() for part in text.split(",") if part.strip()]


def _get(values: Sequence[str], index: int | None) -> str:
    if index is None or index >= len(values):
        return ""
    return values[index]


def customer_row(values: Sequence[str], line: int, columns: Columns) -> CustomerRow:
    """Raises Invalid naming the field when a value is wrong."""
    f = columns.fields
    spend = _get(values, f.get("spend")).strip()
    visits = _get(values, f.get("visits")).strip()
    last = _get(values, f.get("lastActive")).strip()
    attrs = {
        name: values[i].strip()
        for name, i in columns.attrs.items()
        if i < len(values) and values[i].strip()
    }
    return CustomerRow(
        line=line,
        name=_text(_get(values, f.get("name")), "name", required=True),
        email=_email(_get(values, f.get("email")), "email", required=True),
        customer_external_id=_text(
            _get(values, f.get("customer_external_id")), "customer_external_id"
        ),
        phone=_text(_get(values, f.get("phone")), "phone"),
        location=_text(_get(values, f.get("location")), "location"),
        spend=parse_number(spend, "spend") if spend else 0.0,
        visits=int(parse_number(visits, "visits", integer=True)) if visits else 0,
        lastActive=parse_date(last, "lastActive") if last else None,
        attrs=attrs,
    )


def order_row(values: Sequence[str], line: int, columns: Columns) -> OrderRow:
    f = columns.fields
    external = _text(_get(values, f.get("customer_external_id")), "customer_external_id")
    email = _email(_get(values, f.get("customerEmail")), "customerEmail", required=False)
    if not external and not email:
        field = "customer_external_id" if "customer_external_id" in f else "customerEmail"
        raise Invalid(field, "required", "the order names no customer")
    amount = _get(values, f.get("amount")).strip()
    if not amount:
        raise Invalid("amount", "required", "amount is required")
    date = _get(values, f.get("orderDate")).strip()
    if not date:
        raise Invalid("orderDate", "required", "orderDate is required")
    return OrderRow(
        line=line,
        amount=parse_number(amount, "amount"),
        orderDate=parse_date(date, "orderDate"),
        customer_external_id=external,
        customerEmail=email,
        order_external_id=_text(_get(values, f.get("order_external_id")), "order_external_id"),
        items=parse_items(_get(values, f.get("items"))),
    )


def validate(
    values: Sequence[str], line: int, kind: str, columns: Columns
) -> CustomerRow | OrderRow | RowError:
    """The row as a record, or the first problem with it."""
    if len(values) > len(columns.headers):
        return RowError(
            line,
            "",
            "extra_fields",
            f"{len(values)} fields where the header has {len(columns.headers)}",
        )
    try:
        if kind == "customers":
            return customer_row(values, line, columns)
        return order_row(values, line, columns)
    except Invalid as exc:
        index = columns.fields.get(exc.field)
        column = columns.headers[index] if index is not None else exc.field
        return RowError(line, column, exc.code, exc.message)
