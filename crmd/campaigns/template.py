"""Message templates: ``Hi {first_name|there}, ...`` personalised per customer.

A template is parsed once, when the campaign is created: an unknown placeholder is an
error there (422, with its column), never a surprise at send time. ``{{`` and ``}}``
write literal braces. Besides the customer's fields, a message's body (text or HTML)
may place the recipient's unsubscribe link, ``{unsubscribe_url}``; a subject may not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from crmd.store.limits import MAX_NUMBER, number_in_range

PLACEHOLDERS = ("name", "first_name", "email", "location", "spend", "visits")
UNSUBSCRIBE = "unsubscribe_url"
"""The recipient's signed unsubscribe link: in a body, not in a subject."""
_ATTRIBUTE = re.compile(r"attrs\.[A-Za-z0-9_]{1,64}")  # fullmatch: $ allows a final "\n"
MAX_TEMPLATE = 1000
MAX_DEFAULT = 100
MAX_VALUE = 1000
"""A stored value longer than this is not put into a message (it takes the default)."""


class TemplateError(Exception):
    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class Placeholder(msgspec.Struct, frozen=True):
    field: str
    default: str = ""


class Link(msgspec.Struct, frozen=True):
    """A tracked link (``crmd.tracking.links``): written as the recipient's own click
    link when a message is sent, as it was written in the template otherwise (a
    preview, a test send)."""

    index: int
    """The link's place among the campaign's distinct links (``Campaign.links``)."""
    written: str
    """The link as the template has it (in HTML, with its entities)."""


Part = str | Placeholder | Link


def parse_template(
    text: str, *, what: str = "message", limit: int = MAX_TEMPLATE, links: bool = True
) -> list[Part]:
    """Literal text and placeholders, in order; TemplateError (with a 1-based column)
    for an unknown placeholder or an unbalanced brace. ``what`` names the template in
    errors; ``links``: ``{unsubscribe_url}`` is allowed."""
    if not text.strip():
        raise TemplateError(f"the {what} is empty", 1)
    if len(text) > limit:
        raise TemplateError(f"the {what} is longer than {limit} characters", limit + 1)
    parts: list[Part] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "{}" and text.startswith(char * 2, i):
            literal.append(char)
            i += 2
            continue
        if char == "}":
            raise TemplateError(
                f"unmatched '}}' at column {i + 1} (write '}}}}' for a literal brace)", i + 1
            )
        if char != "{":
            literal.append(char)
            i += 1
            continue
        end = text.find("}", i)
        if end == -1:
            raise TemplateError(f"unclosed '{{' at column {i + 1}", i + 1)
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_placeholder(text[i + 1 : end], i + 1, links))
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return parts


def _placeholder(inside: str, column: int, links: bool) -> Placeholder:
    field, _, default = inside.partition("|")
    field = field.strip()
    known = (*PLACEHOLDERS, UNSUBSCRIBE) if links else PLACEHOLDERS
    if field not in known and not _ATTRIBUTE.fullmatch(field):
        literal = "" if re.fullmatch(r"[\w.]*", field) else " (write '{{' for a literal brace)"
        raise TemplateError(
            f"unknown placeholder {{{field}}} at column {column}{literal}; use "
            f"{', '.join('{' + p + '}' for p in known)} or {{attrs.<name>}}, each "
            "with an optional default: {first_name|there}",
            column,
        )
    if len(default) > MAX_DEFAULT or "{" in default:
        raise TemplateError(
            f"the default of {{{field}}} at column {column} is not plain "
            f"text of at most {MAX_DEFAULT} characters",
            column,
        )
    return Placeholder(field, default)


def render(
    parts: list[Part],
    customer: Mapping[str, Any],
    *,
    unsubscribe_url: str = "",
    escape: Callable[[str], str] | None = None,
    link: Callable[[int], str] | None = None,
) -> str:
    """The message for one customer. A missing or empty value takes the default, and
    so does one that cannot be written as text (an infinite or absurd number left by
    an older import): rendering never fails on a stored value. ``escape`` is applied to
    each value (an HTML body's), not to the template's own text and defaults. ``link``
    gives a tracked link's address by its index (without it, links stay as written)."""
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        if isinstance(part, Link):
            tracked = link(part.index) if link else None
            out.append(part.written if tracked is None else escape(tracked) if escape else tracked)
            continue
        try:
            value = unsubscribe_url if part.field == UNSUBSCRIBE else _value(part.field, customer)
        except (ValueError, OverflowError, TypeError):
            value = ""
        if not value:
            out.append(part.default)
        else:
            out.append(escape(value) if escape else value)
    return "".join(out)


def uses_unsubscribe(parts: list[Part]) -> bool:
    return any(isinstance(p, Placeholder) and p.field == UNSUBSCRIBE for p in parts)


def _value(field: str, customer: Mapping[str, Any]) -> str:
    if field == "first_name":
        name = str(customer.get("name") or "").strip()
        return name.split()[0] if name else ""
    if field.startswith("attrs."):
        attrs = customer.get("attrs") or {}
        return _text(attrs.get(field[len("attrs.") :]))
    return _text(customer.get(field))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not number_in_range(value):
            return ""
        if value == int(value):
            return f"{int(value):,}"
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) <= MAX_NUMBER else ""
    text = str(value).strip()
    return text if len(text) <= MAX_VALUE else ""
