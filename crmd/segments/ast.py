"""The rule language's syntax tree: msgspec Structs, so a parsed rule can be stored,
sent and compared as data."""

from __future__ import annotations

from datetime import datetime

import msgspec


class Relative(msgspec.Struct, frozen=True, tag="relative"):
    """An age: ``90d`` is 90 days before now."""

    days: int


class DateValue(msgspec.Struct, frozen=True, tag="date"):
    """An absolute date; ``whole_day`` when written without a time (``2024-05-01``)."""

    at: datetime
    whole_day: bool


Value = float | str | bool | DateValue | Relative


class Compare(msgspec.Struct, frozen=True, tag="compare"):
    field: str
    op: str
    """One of > >= < <= = != contains startswith endswith."""
    value: Value


class InList(msgspec.Struct, frozen=True, tag="in"):
    field: str
    values: list[Value]


class Exists(msgspec.Struct, frozen=True, tag="exists"):
    field: str


class EventCount(msgspec.Struct, frozen=True, tag="event_count"):
    """``event.<name>.count <op> <count>``, over the last ``days`` days when written
    ``in 30d`` (None: every time kept)."""

    name: str
    op: str
    """One of > >= < <= = !=."""
    count: int
    days: int | None = None

    @property
    def field(self) -> str:
        """Where the customer's document keeps the event's times, newest first."""
        return f"{EVENT_TIMES}.{self.name}"


EVENT_TIMES = "eventTimes"
"""A customer's recent times of each event (``eventTimes.<name>``): newest first, at
most ``TIMES_KEPT``, kept so by the events' writer (``crmd.events.store``)."""
TIMES_KEPT = 100
MAX_EVENT_COUNT = TIMES_KEPT - 1
"""The largest count a rule may name: ``count > 99`` needs the 100th time, the last
one kept; beyond it counts cannot be told apart."""


class Not(msgspec.Struct, frozen=True, tag="not"):
    item: Node


class And(msgspec.Struct, frozen=True, tag="and"):
    items: list[Node]


class Or(msgspec.Struct, frozen=True, tag="or"):
    items: list[Node]


Node = Compare | InList | Exists | EventCount | Not | And | Or
