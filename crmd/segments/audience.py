"""A rule's audience counted (with a sample, or ids) in a way that costs the user's own
customers, never every tenant's.

SecantusDB answers a filter with no logical operator from a ``userId``-led index, but a
filter with ``$and``, ``$or`` or ``$expr`` anywhere at its top makes it scan the whole
collection, every tenant's documents: a two-clause rule typed by a user with three
customers took minutes beside another user's 200k, and starved everyone. So a rule that
is an AND of comparisons is merged into one flat filter (one condition per field) and
counted by the database; any other rule is tested in Python (the reference evaluator)
on the user's own customers, read through the user's index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmd.segments.evaluate import evaluate
from crmd.segments.parse import RuleError, parse_rule
from crmd.segments.query import InvalidRule, rule_filter, rule_now
from crmd.store.documents import Doc
from crmd.store.tenant import ScopedCollection


def flat_filter(query: Doc) -> Doc | None:
    """``query`` with no logical operator at its top, when it is an AND of conditions on
    distinct fields (or of operators that can share a field); else None."""
    if not any(key.startswith("$") for key in query):
        return query
    if set(query) != {"$and"}:
        return None
    merged: Doc = {}
    for part in query["$and"]:
        flat = flat_filter(part)
        if flat is None:
            return None
        for field, condition in flat.items():
            if field not in merged:
                merged[field] = condition
                continue
            held = merged[field]
            if not (_operators(held) and _operators(condition)) or held.keys() & condition.keys():
                return None
            merged[field] = {**held, **condition}
    return merged


def _operators(condition: Any) -> bool:
    return isinstance(condition, dict) and all(key.startswith("$") for key in condition)


async def audience(
    customers: ScopedCollection,
    rule: str,
    now: datetime | None = None,
    *,
    sample: int = 0,
    ids: int = 0,
) -> tuple[int, list[Doc], list[Any]]:
    """(how many customers ``rule`` takes, the first ``sample`` of them, the first
    ``ids`` of their ids); InvalidRule (422) for a bad rule."""
    moment = now or rule_now()
    flat = flat_filter(rule_filter(rule, moment))
    if flat is not None:  # one pass: SecantusDB finds every match even for a limit
        facets: Doc = {"size": [{"$count": "n"}], "sample": [{"$limit": max(sample, 1)}]}
        if ids:
            facets["ids"] = [{"$limit": ids}, {"$project": {"_id": 1}}]
        cursor = await customers.aggregate([{"$match": flat}, {"$facet": facets}])
        got = (await cursor.to_list())[0]
        size = got["size"][0]["n"] if got["size"] else 0
        return size, got["sample"][:sample], [d["_id"] for d in got.get("ids", [])]
    try:
        node = parse_rule(rule)
    except RuleError as exc:  # (rule_filter said it first)
        raise InvalidRule(exc) from None
    size = 0
    shown: list[Doc] = []
    found: list[Any] = []
    async for doc in customers.find({}, batch_size=1000):
        if evaluate(node, doc, moment):
            size += 1
            if len(shown) < sample:
                shown.append(doc)
            if len(found) < ids:
                found.append(doc["_id"])
    return size, shown, found
