"""Segments on the wire: the bodies crmd decodes and the answers it encodes.

Shared by the routes, the console and the typed client (``crmd.client``), which imports it
without a database or Redis driver: keep it to msgspec and the other schema modules.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

from crmd.http.describe import Moment
from crmd.http.schema import Body

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Loyal"])]

RuleText = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2000, examples=["spend > 1000 AND visits >= 3"])
]


class SegmentBody(Body):
    name: Name | None = None
    rule: RuleText | None = None


class PreviewBody(Body):
    rule: RuleText
    ids: bool = False
    """Also answer ``audienceIds``: the ids of at most 1,000 of the customers."""


class Segment(msgspec.Struct):
    id: str
    name: str
    rule: str
    audienceSize: int | None
    """How many customers matched when last counted (null: the rule no longer parses)."""
    countedAt: Moment | None
    createdAt: Moment
    updatedAt: Moment


class SegmentList(msgspec.Struct):
    items: list[Segment]
    total: int


class Preview(msgspec.Struct):
    audienceSize: int
    """How many customers the rule matches; while ``complete`` is false (the answer is
    then 202), how many it matches among those counted so far."""
    sample: list[dict[str, Any]]
    """Up to ten of the newest matching customers, as imported."""
    complete: bool = True
    """False while the count goes on: ask again (``Retry-After``) for more."""
    progress: float = 1.0
    """The share of the customers counted, 0 to 1."""
    audienceIds: list[str] | UnsetType = UNSET
    """With ``ids``: the ids of up to 1,000 of them."""
