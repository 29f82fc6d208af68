"""The AI endpoints on the wire: what they take and what they answer.

Shared by the routes and the typed client (``crmd.client``), which imports it without a
database or Redis driver: keep it to msgspec and the other schema modules.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from crmd.http.schema import Body

Short = Annotated[str, msgspec.Meta(max_length=500)]


class MessagesBody(Body):
    objective: Short = ""
    intent: Short = ""
    rule: Annotated[
        str, msgspec.Meta(max_length=2000, examples=["spend > 1000 AND visits >= 3"])
    ] = ""
    n: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3


class RuleBody(Body):
    text: Annotated[
        str, msgspec.Meta(min_length=1, max_length=500, examples=["who spent over 1000"])
    ]


class TagsBody(Body):
    rule: Annotated[
        str, msgspec.Meta(min_length=1, max_length=2000, examples=["spend > 1000 AND visits >= 3"])
    ]


class Variants(msgspec.Struct):
    variants: list[str]
    source: str
    """Which suggester answered."""


class RuleSuggestion(msgspec.Struct):
    rule: str
    audienceSize: int
    source: str


class Summary(msgspec.Struct):
    summary: str
    source: str


class Tags(msgspec.Struct):
    tags: list[str]
    source: str
