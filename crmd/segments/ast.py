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


class Not(msgspec.Struct, frozen=True, tag="not"):
    item: Node


class And(msgspec.Struct, frozen=True, tag="and"):
    items: list[Node]


class Or(msgspec.Struct, frozen=True, tag="or"):
    items: list[Node]


Node = Compare | InList | Exists | Not | And | Or
