"""The fields a rule may name, each with its type."""

from __future__ import annotations

import re

NUMBER, DATE, STRING = "number", "date", "string"
ATTRIBUTE = "attribute"
"""A custom attribute (``attrs.<name>``): its type is the value's it is compared with."""

FIELDS: dict[str, str] = {
    "spend": NUMBER,
    "visits": NUMBER,
    "orderCount": NUMBER,
    "orderTotal": NUMBER,
    "lastActive": DATE,
    "lastOrderAt": DATE,
    "name": STRING,
    "email": STRING,
    "phone": STRING,
    "location": STRING,
}
INACTIVE_DAYS = "inactive_days"
"""Readable form: ``inactive_days > 90`` means ``lastActive < 90d``."""

_ATTRIBUTE_NAME = re.compile(r"^attrs\.[A-Za-z0-9_]{1,64}$")
_BY_LOWER = {name.lower(): name for name in FIELDS}


def field_type(name: str) -> str | None:
    """The field's type, or None when there is no such field. Names match ignoring case
    (``lastactive``); custom attributes keep theirs."""
    if name.lower() == INACTIVE_DAYS:
        return NUMBER
    if _ATTRIBUTE_NAME.match(name):
        return ATTRIBUTE
    canonical = _BY_LOWER.get(name.lower())
    return FIELDS[canonical] if canonical else None


def canonical_name(name: str) -> str:
    if name.lower() == INACTIVE_DAYS:
        return INACTIVE_DAYS
    return _BY_LOWER.get(name.lower(), name)


def known_fields() -> str:
    return ", ".join([*FIELDS, INACTIVE_DAYS, "attrs.<name>"])
