"""Rules in flows: the segment language over a customer, and for a trigger or a goal
also over the event's properties, named ``event.<property>``
(``crmd.segments.fields.CUSTOMERS_AND_EVENT``).

A flow's rules are evaluated in Python on one customer at a time (the reference
evaluator of ``crmd.segments.evaluate``, which the MongoDB filters are tested against),
so a rule means in a flow what it means in a segment.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from crmd.segments.ast import Node
from crmd.segments.evaluate import evaluate
from crmd.segments.fields import CUSTOMERS_AND_EVENT
from crmd.segments.parse import parse_rule


@functools.lru_cache(maxsize=1024)
def parsed(rule: str) -> Node:
    return parse_rule(rule, CUSTOMERS_AND_EVENT)


def holds(rule: str | None, customer: dict[str, Any], event: dict[str, Any], now: datetime) -> bool:
    """Whether ``rule`` (none: always) holds for ``customer``, with ``event``'s properties
    as ``event.<property>``."""
    if not rule:
        return True
    return evaluate(parsed(rule), {**customer, "event": event}, now)
