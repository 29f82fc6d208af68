"""The answers the original Mini-CRM clients read, made from crmd's: the original's
fields added beside crmd's own (pure functions of the JSON; ``compat`` applies them)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Json = Any


def audience_details(answer: Json) -> Json:
    return {
        **answer,
        "audienceDetails": {
            "audienceSize": answer["audienceSize"],
            "audienceIds": answer.get("audienceIds", []),
        },
    }


def generated_message(answer: Json) -> Json:
    return {"success": True, "message": answer["variants"][0]}


def _original_id(item: Json) -> Json:
    return {**item, "_id": item["id"]}


def listed(answer: Json) -> Json:
    """A list as the original backend gave it: ``success`` and ``data[]`` with ``_id``."""
    return {**answer, "success": True, "data": [_original_id(i) for i in answer["items"]]}


_COMPARISON = re.compile(r"([A-Za-z_][\w.]*) ?(>=|<=|!=|==|=|>|<)(.*)", re.DOTALL)
_LOGIC = {"AND", "OR"}


def conditions(rule: str) -> Json:
    """The original's ``logicType`` and ``conditions[]`` of a rule, when the rule is one
    AND (or one OR) chain of comparisons, as the original segment form writes them;
    an empty list otherwise (the campaign form maps over it to describe the rule).
    Linear in the rule's length: it runs on every segment of a list."""
    parts: list[list[str]] = [[]]
    logic: set[str] = set()
    for word in rule.split():
        if word.upper() in _LOGIC:
            logic.add(word.upper())
            parts.append([])
        else:
            parts[-1].append(word)
    conditions = []
    for part in parts:
        found = _COMPARISON.fullmatch(" ".join(part))
        if found is None or not found[3].strip():
            return {"logicType": "AND", "conditions": []}
        conditions.append({"field": found[1], "op": found[2], "value": found[3].strip()})
    if len(logic) > 1:
        return {"logicType": "AND", "conditions": []}
    return {"logicType": logic.pop() if logic else "AND", "conditions": conditions}


def listed_segments(answer: Json) -> Json:
    answer = listed(answer)
    answer["data"] = [{**s, **conditions(str(s.get("rule", "")))} for s in answer["data"]]
    return answer


def created(answer: Json) -> Json:
    return {**answer, "success": True, "message": "created", "data": _original_id(answer)}


def saved_campaign(answer: Json) -> Json:
    saved = _original_id(answer)
    return {**answer, "success": True, "savedCompaign": saved, "data": saved}


def totals(answer: Json) -> Json:
    return {
        **answer,
        "success": True,
        "totalCustomers": answer["customers"],
        "totalOrders": answer["orders"],
        "totalCampaigns": answer["campaigns"],
    }


def uploaded(answer: Json) -> Json:
    rows = answer["rows"]
    said = f"{rows['valid']} of {rows['received']} rows accepted ({rows['rejected']} rejected)"
    return {**answer, "message": said}


# -- what the original clients send and read, for the API's description -----------------


class OriginalSegmentRule(msgspec.Struct):
    rule: Annotated[
        str, msgspec.Meta(min_length=1, max_length=2000, examples=["spend > 1000 AND visits >= 3"])
    ]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class OriginalSegment(msgspec.Struct):
    segment_rule: OriginalSegmentRule
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class OriginalCampaign(msgspec.Struct, forbid_unknown_fields=True):
    """The campaign in the original's words; a field beside these is refused."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Thanks"])]
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=1000, examples=["Hi {name}"])]
    intent: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    rule: Annotated[str, msgspec.Meta(max_length=2000, examples=["visits > 2"])] | None = None
    ruleId: str | None = None
    """A segment's id (crmd's ``segmentId``)."""
    vendor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    scheduledAt: datetime | None = None
    status: Literal["draft"] | None = None
    """``draft``: save it without sending."""


class OriginalCampaignBody(msgspec.Struct):
    compaignDetails: OriginalCampaign


class AudienceQuery(msgspec.Struct):
    rule: Annotated[
        str, msgspec.Meta(min_length=1, max_length=2000, examples=["spend > 1000 AND visits >= 3"])
    ]


class OAuthQuery(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)] | None = None
    credential: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)] | None = None


class MessageRequest(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(max_length=500)]
    """The objective."""
    rule: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class GeneratedMessage(msgspec.Struct):
    success: bool
    message: str


class AudienceDetails(msgspec.Struct):
    audienceSize: int
    audienceIds: list[str]


class OriginalPreview(msgspec.Struct):
    audienceSize: int
    sample: list[dict[str, Any]]
    audienceDetails: AudienceDetails
    audienceIds: list[str] | msgspec.UnsetType = msgspec.UNSET
