"""The rule evaluated in Python over one customer document: the reference the MongoDB
filter is tested against, with MongoDB's semantics (a missing field matches nothing but
!= and NOT; values of another type never compare)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from crmd.segments.ast import (
    TIMES_KEPT,
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
from crmd.segments.compile import day_of, instant, since, text_pattern

_MISSING = object()
_ORDER = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def lookup(doc: dict[str, Any], field: str) -> Any:
    node: Any = doc
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def evaluate(node: Node, doc: dict[str, Any], now: datetime) -> bool:
    if isinstance(node, And):
        return all(evaluate(item, doc, now) for item in node.items)
    if isinstance(node, Or):
        return any(evaluate(item, doc, now) for item in node.items)
    if isinstance(node, Not):
        return not evaluate(node.item, doc, now)
    if isinstance(node, Exists):
        return lookup(doc, node.field) not in (_MISSING, None, "")
    if isinstance(node, InList):
        return any(evaluate(Compare(node.field, "=", v), doc, now) for v in node.values)
    if isinstance(node, EventCount):
        return bool(_COUNT_OPS[node.op](event_count(node, doc, now), node.count))
    if node.op == "!=":
        return not evaluate(Compare(node.field, "=", node.value), doc, now)
    actual = lookup(doc, node.field)
    if isinstance(actual, list):  # as MongoDB: an array matches when one element does
        return any(_holds(node, item, now) for item in actual)
    return _holds(node, actual, now)


_COUNT_OPS = {**_ORDER, "=": lambda a, b: a == b, "!=": lambda a, b: a != b}


def event_count(node: EventCount, doc: dict[str, Any], now: datetime) -> int:
    """How many of the customer's kept times of the event fall in the node's window."""
    times = lookup(doc, node.field)
    if not isinstance(times, list):
        return 0
    start = since(node.days, now)
    kept = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times if isinstance(t, datetime)]
    return sum(1 for t in kept[:TIMES_KEPT] if start is None or t >= start)


def _holds(node: Compare, actual: Any, now: datetime) -> bool:
    value, op = node.value, node.op
    if isinstance(value, str):
        return (
            isinstance(actual, str)
            and re.search(text_pattern(op, value), actual, re.IGNORECASE) is not None
        )
    if isinstance(value, DateValue | Relative):
        if not isinstance(actual, datetime):
            return False
        moment = actual if actual.tzinfo else actual.replace(tzinfo=UTC)
        day = day_of(value, op, now)
        if op == "=":
            return day[0] <= moment < day[1] if day else moment == instant(value, now)
        if day is None:
            return bool(_ORDER[op](moment, instant(value, now)))
        start, end = day
        return {">": moment >= end, ">=": moment >= start, "<": moment < start, "<=": moment < end}[
            op
        ]
    if isinstance(value, bool):
        return isinstance(actual, bool) and actual is value
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    if op == "=":
        return bool(actual == value)
    return bool(_ORDER[op](actual, value))
