"""Syntax tree to MongoDB filter. Text comparisons use anchored, escaped,
case-insensitive regular expressions; nothing from the rule is ever code."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from crmd.segments.ast import (
    And,
    Compare,
    DateValue,
    EventCount,
    Exists,
    InList,
    Node,
    Not,
    Or,
    Relative,
)

DAY = timedelta(days=1)
_RANGE_OPS = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}


def text_pattern(op: str, value: str) -> str:
    """The regular expression for a text comparison; the value is always escaped."""
    escaped = re.escape(value)
    return {
        "=": f"^{escaped}$",
        "contains": escaped,
        "startswith": f"^{escaped}",
        "endswith": f"{escaped}$",
    }[op]


def instant(value: DateValue | Relative, now: datetime) -> datetime:
    return now - timedelta(days=value.days) if isinstance(value, Relative) else value.at


def day_of(value: DateValue | Relative, op: str, now: datetime) -> tuple[datetime, datetime] | None:
    """The whole UTC day the comparison is about, or None when it is about a moment.
    A date written without a time is a day for every operator; an age (``90d``) is a
    moment ("before the moment 90 days ago"), except for = and !=, where it is that day."""
    if isinstance(value, DateValue) and not value.whole_day:
        return None
    if isinstance(value, Relative) and op not in ("=", "!="):
        return None
    start = instant(value, now).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + DAY


def compile_rule(node: Node, now: datetime) -> dict[str, Any]:
    """The filter matching exactly the customers ``evaluate`` accepts at ``now``."""
    if isinstance(node, And):
        return {"$and": [compile_rule(item, now) for item in node.items]}
    if isinstance(node, Or):
        return {"$or": [compile_rule(item, now) for item in node.items]}
    if isinstance(node, Not):
        return {"$nor": [compile_rule(node.item, now)]}
    if isinstance(node, Exists):
        return {node.field: {"$exists": True, "$nin": [None, ""]}}
    if isinstance(node, InList):
        return {"$or": [_compare(Compare(node.field, "=", v), now) for v in node.values]}
    if isinstance(node, EventCount):
        return _event_count(node, now)
    return _compare(node, now)


ALWAYS: dict[str, Any] = {"_id": {"$exists": True}}


def since(days: int | None, now: datetime) -> datetime | None:
    """The start of an event count's window (None: no window)."""
    return None if days is None else now - timedelta(days=days)


def _at_least(node: EventCount, times: int, now: datetime) -> dict[str, Any]:
    """The customer has ``times`` of the event (in the window). The times are kept
    newest first, so that is exactly: the ``times``-th time exists (and is in the
    window). Not more than the times kept: the parser refuses larger counts."""
    if times <= 0:
        return ALWAYS
    start = since(node.days, now)
    place = f"{node.field}.{times - 1}"
    return {place: {"$exists": True}} if start is None else {place: {"$gte": start}}


def _event_count(node: EventCount, now: datetime) -> dict[str, Any]:
    """Every comparison as "at least k times" and its negation: one filter, no reads."""
    n, op = node.count, node.op
    if op == ">=":
        return _at_least(node, n, now)
    if op == ">":
        return _at_least(node, n + 1, now)
    if op == "<":
        return {"$nor": [_at_least(node, n, now)]}
    if op == "<=":
        return {"$nor": [_at_least(node, n + 1, now)]}
    exactly = {"$and": [_at_least(node, n, now), {"$nor": [_at_least(node, n + 1, now)]}]}
    return exactly if op == "=" else {"$nor": [exactly]}


def _compare(node: Compare, now: datetime) -> dict[str, Any]:
    field, op, value = node.field, node.op, node.value
    if isinstance(value, str):
        # The operator form, not a BSON regex value: SecantusDB answers a regex value on
        # an indexed field with nothing at all (found by the property test with indexes).
        condition = {"$regex": text_pattern("=" if op == "!=" else op, value), "$options": "i"}
        return {field: {"$not": condition}} if op == "!=" else {field: condition}
    if isinstance(value, DateValue | Relative):
        day = day_of(value, op, now)
        if op in ("=", "!="):
            match = {"$gte": day[0], "$lt": day[1]} if day else instant(value, now)
            return {"$nor": [{field: match}]} if op == "!=" else {field: match}
        # A whole day: "before 2024-05-01" is before its start, "after" after its end.
        bound = instant(value, now) if day is None else (day[1] if op in (">", "<=") else day[0])
        strict = {">": "$gte", "<=": "$lt"} if day else {}
        return {field: {strict.get(op, _RANGE_OPS[op]): bound}}
    if op == "=":
        return {field: value}
    if op == "!=":
        return {field: {"$ne": value}}
    return {field: {_RANGE_OPS[op]: value}}
