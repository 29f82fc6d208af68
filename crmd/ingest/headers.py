"""Matching a CSV's header row to crmd's fields: case, spaces, ``_`` and ``-`` ignored,
other CRMs' names accepted, and an explicit mapping from the request winning over both."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import msgspec

from crmd.ingest.errors import FileProblem

CUSTOMER_FIELDS: Mapping[str, tuple[str, ...]] = {
    "customer_external_id": ("customerexternalid", "externalid", "customerid"),
    "name": ("name", "fullname", "customername"),
    "email": ("email", "emailaddress"),
    "phone": ("phone", "mobile", "phonenumber"),
    "location": ("location", "city"),
    "spend": ("spend", "totalspend"),
    "visits": ("visits", "totalvisits", "visitcount"),
    "lastActive": ("lastactive", "lastvisit", "lastactivedate", "lastorderdate"),
}
CUSTOMER_REQUIRED = ("name", "email")

ORDER_FIELDS: Mapping[str, tuple[str, ...]] = {
    "customer_external_id": ("customerexternalid", "customerid"),
    "customerEmail": ("customeremail",),
    "order_external_id": ("orderexternalid", "orderid"),
    "amount": ("amount", "orderamount", "total"),
    "items": ("items",),
    "orderDate": ("orderdate", "date"),
}
ORDER_REQUIRED = ("amount", "orderDate")

_IGNORED = re.compile(r"[\s_\-]+")


def normalise(header: str) -> str:
    return _IGNORED.sub("", header).lower()


class Columns(msgspec.Struct, frozen=True):
    """Which column holds each field; the rest become custom attributes."""

    fields: dict[str, int]
    attrs: dict[str, int]
    headers: list[str]


MAX_MAPPING = 4096


def parse_mapping(raw: str | None) -> dict[str, str]:
    """The request's explicit mapping, JSON ``{"spend": "Total Spent"}``."""
    if not raw:
        return {}
    if len(raw) > MAX_MAPPING:
        raise FileProblem(400, "bad_mapping", f"mapping is longer than {MAX_MAPPING:,} characters")
    try:
        mapping = msgspec.json.decode(raw, type=dict[str, str])
    except (msgspec.DecodeError, RecursionError) as exc:
        raise FileProblem(
            400, "bad_mapping", f"mapping is not a JSON object of strings: {exc}"
        ) from None
    return mapping


def match_columns(
    headers: Sequence[str], kind: str, mapping: Mapping[str, str] | None = None
) -> Columns:
    """Map the header row onto the kind's fields, or raise FileProblem (422) for a
    duplicate header, an unknown mapped field or column, or a missing required column."""
    fields_spec = CUSTOMER_FIELDS if kind == "customers" else ORDER_FIELDS
    cleaned = [h.strip() for h in headers]
    seen: dict[str, int] = {}
    for index, header in enumerate(cleaned):
        key = normalise(header)
        if not key:
            raise FileProblem(
                422, "empty_header", f"column {index + 1} has no header", column=index + 1
            )
        if key in seen:
            raise FileProblem(
                422,
                "duplicate_header",
                f"header {header!r} (column {index + 1}) repeats column {seen[key] + 1}",
                column=index + 1,
            )
        seen[key] = index
    fields: dict[str, int] = {}
    for field, column in (mapping or {}).items():
        if field not in fields_spec:
            raise FileProblem(
                422,
                "bad_mapping",
                f"mapping names unknown field {field!r}; fields are {', '.join(fields_spec)}",
            )
        mapped = seen.get(normalise(column))
        if mapped is None:
            raise FileProblem(
                422,
                "bad_mapping",
                f"mapping for {field!r} names column {column!r}, which the file does not have",
            )
        fields[field] = mapped
    taken = set(fields.values())
    for field, aliases in fields_spec.items():
        if field in fields:
            continue
        for alias in aliases:
            found = seen.get(alias)
            if found is not None and found not in taken:
                fields[field] = found
                taken.add(found)
                break
    required = CUSTOMER_REQUIRED if kind == "customers" else ORDER_REQUIRED
    missing = [f for f in required if f not in fields]
    if kind == "orders" and "customer_external_id" not in fields and "customerEmail" not in fields:
        missing.append("customer_external_id or customerEmail")
    if missing:
        raise FileProblem(
            422, "missing_column", f"missing required column(s): {', '.join(missing)}"
        )
    attrs = {}
    if kind == "customers":
        attrs = {attr_name(cleaned[i]): i for i in range(len(cleaned)) if i not in taken}
    return Columns(fields=fields, attrs=attrs, headers=cleaned)


def attr_name(header: str) -> str:
    """A custom attribute's key: the header, lower-cased, with runs of anything but
    letters and digits turned into ``_`` (so rules can say ``attrs.loyalty_tier``)."""
    return re.sub(r"[^0-9a-z]+", "_", header.lower()).strip("_") or "column"
