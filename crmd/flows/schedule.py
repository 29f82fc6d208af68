"""Triggers the clock checks: customers in a segment, and a date's anniversary.

A segment-triggered flow enters the segment's members (its rule compiled to one
filter on the customers, as a segment's count is) a batch a tick, walking them by id
from where the last tick stopped; when a walk ends, the next starts once
``[flows] segment_check_minutes`` have passed. Entry follows the flow's ``entry``:
``once`` enters each member once; ``every`` enters one again at a walk after
``reentryDays`` have passed since they last entered, if they left.

An anniversary-triggered flow walks, once a day (UTC), the customers who have the date
field, and enters those whose date's month and day are today's, once a year.

Both walks are bounded per tick and resumable: where a walk is lives on the flow's
document (``scheduleCursor``, ``scheduleFrom``), so a restart goes on from there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from bson import ObjectId
from bson.errors import InvalidId
from pymongo.asynchronous.database import AsyncDatabase

from crmd.flows.actor import Queue
from crmd.flows.engine import Engine
from crmd.flows.intake import Happened, enter, triggers
from crmd.segments.query import InvalidRule, rule_filter
from crmd.store.documents import Doc
from crmd.store.tenant import TenantStore

log = structlog.get_logger(__name__)


async def check_scheduled(
    db: AsyncDatabase[dict[str, Any]],
    engine: Engine,
    queue: Queue,
    now: datetime,
    batch: int,
    every_minutes: int,
) -> int:
    """One tick of every active segment or anniversary flow's walk; how many entered."""
    entered = 0
    due = {
        "status": "active",
        "triggerKey": {"$regex": "^(segment|anniversary):"},
        "$or": [{"scheduleFrom": None}, {"scheduleFrom": {"$lte": now}}],
    }
    async for flow in db.flows.find(due, projection={"userId": 1, "version": 1, "triggerKey": 1}):
        store = TenantStore(db, flow["userId"])
        try:
            entered += await _walk(store, engine, queue, flow, now, batch, every_minutes)
        except InvalidRule as exc:  # the segment's rule no longer parses: say so, go on
            log.warning("flow.segment_rule_invalid", flow=str(flow["_id"]), error=exc.message)
    return entered


async def _walk(
    store: TenantStore,
    engine: Engine,
    queue: Queue,
    flow: Doc,
    now: datetime,
    batch: int,
    every_minutes: int,
) -> int:
    flow_id = str(flow["_id"])
    kind, _, target = flow["triggerKey"].partition(":")
    found = await store["flows"].find_one({"_id": flow["_id"]}, projection={"scheduleCursor": 1})
    cursor = (found or {}).get("scheduleCursor") or ""
    if kind == "segment":
        query = await _segment_filter(store, target, now)
        if query is None:
            return 0
        name, event_id = "segment", f"segment:{target}:{now:%Y%m%d}"
        next_walk = now + timedelta(minutes=every_minutes)
    else:
        query = {target: {"$exists": True}}
        name, event_id = "anniversary", f"anniversary:{target}:{now:%Y}"
        next_walk = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if cursor:
        query = {**query, "_id": {"$gt": cursor}}
    customers = [c async for c in store["customers"].find(query, sort=[("_id", 1)], limit=batch)]
    definition = await engine.definition(store, flow_id, flow["version"])
    entered: list[str] = []
    for customer in customers:
        customer = {**customer, "_id": str(customer["_id"])}
        if kind == "anniversary" and not _is_anniversary(_value(customer, target), now.date()):
            continue
        happened = Happened(customer["_id"], name, {"field": target}, event_id, now)
        if not triggers(definition, happened, customer, now):
            continue
        state = await enter(store, flow_id, flow["version"], definition, happened, now)
        if state is not None:
            entered.append(state)
    await queue(store, entered)
    done = len(customers) < batch
    await store["flows"].update_one(
        {"_id": flow["_id"]},
        {
            "$set": {
                "scheduleCursor": "" if done else customers[-1]["_id"],
                "scheduleFrom": next_walk if done else None,
            }
        },
    )
    return len(entered)


async def _segment_filter(store: TenantStore, segment_id: str, now: datetime) -> Doc | None:
    try:
        wanted = ObjectId(segment_id)
    except (InvalidId, TypeError):
        return None
    segment = await store["segments"].find_one({"_id": wanted}, projection={"rule": 1})
    if segment is None:
        return None  # deleted since: the flow's page says so (its checks refuse it)
    return rule_filter(segment["rule"], now)


def _value(customer: Doc, field: str) -> Any:
    node: Any = customer
    for part in field.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _is_anniversary(value: Any, today: date) -> bool:
    """Whether ``value`` (a date, or text starting with one: ``1990-05-01``) falls on
    today's month and day; 29 February is kept on 28 February in other years."""
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, str):
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            return False
    else:
        return False
    if day.month == 2 and day.day == 29 and not _leap(today.year):
        return (today.month, today.day) == (2, 28)
    return (day.month, day.day) == (today.month, today.day)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
