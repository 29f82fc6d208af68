"""What customers did, put to the flows: entering those it triggers, ending those whose
goal it reaches.

Called with each batch of events as it is stored (orders are ``order`` events), at
least once per event: a batch handled again after a crash enters no one twice,
because a state's id is derived from the flow, the customer and the entry (``once``:
the flow and the customer alone; ``every``: also the event's id), and is inserted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import structlog
from pymongo.errors import DuplicateKeyError

from crmd.flows import paths
from crmd.flows.engine import OPEN, Engine
from crmd.flows.model import Definition, StateStatus
from crmd.flows.rules import holds
from crmd.store.documents import Doc
from crmd.store.tenant import TenantStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Happened:
    """An event as flows read it."""

    customerId: str
    name: str
    properties: dict[str, Any]
    eventId: str
    timestamp: datetime


Queue = Callable[[TenantStore, list[str]], Awaitable[None]]
"""Hands states to the flows stream (``crmd.flows.actor.queue_states``)."""


def trigger_keys(name: str) -> list[str]:
    keys = [f"event:{name}"]
    if name == "order":
        keys.append("order")
    return keys


async def on_events(
    store: TenantStore, engine: Engine, queue: Queue, events: Sequence[Happened]
) -> int:
    """Enter the customers the events trigger flows for, and convert those whose goal
    they reach; returns how many entered."""
    if not events:
        return 0
    now = datetime.now(UTC)
    customers = await _customers(store, {e.customerId for e in events})
    keys = sorted({k for e in events for k in trigger_keys(e.name)})
    flows = [
        f
        async for f in store["flows"].find(
            {"status": "active", "triggerKey": {"$in": keys}},
            projection={"_id": 1, "version": 1, "triggerKey": 1, "name": 1},
        )
    ]
    entered: list[str] = []
    for flow in flows:
        flow_id = str(flow["_id"])
        definition = await engine.definition(store, flow_id, flow["version"])
        for event in events:
            if flow["triggerKey"] not in trigger_keys(event.name):
                continue
            customer = customers.get(event.customerId)
            if customer is None or not triggers(definition, event, customer, now):
                continue
            state = await enter(store, flow_id, flow["version"], definition, event, now)
            if state is not None:
                entered.append(state)
                await engine.emit(
                    store,
                    "flow.entered",
                    {
                        "stateId": state,
                        "flowId": flow_id,
                        "version": flow["version"],
                        "customerId": event.customerId,
                        "event": event.name,
                    },
                )
    await queue(store, entered)
    # After entering: a goal in the same batch as the trigger, and later, counts.
    await _goals(store, engine, events, customers, now)
    return len(entered)


def triggers(definition: Definition, event: Happened, customer: Doc, now: datetime) -> bool:
    trigger = definition.trigger
    if trigger.order is not None:
        amount = event.properties.get("amount")
        if trigger.order.first and not event.properties.get("first"):
            return False
        if trigger.order.minAmount is not None and not (
            isinstance(amount, int | float) and amount >= trigger.order.minAmount
        ):
            return False
    return holds(trigger.where, customer, event.properties, now)


async def enter(
    store: TenantStore,
    flow_id: str,
    version: int,
    definition: Definition,
    event: Happened,
    now: datetime,
) -> str | None:
    """The customer's new state in the flow, or None when they may not enter now (in
    it already, entered once, or again too soon)."""
    states = store["flow_states"]
    latest = [
        s
        async for s in states.find(
            {"flowId": flow_id, "customerId": event.customerId},
            projection={"status": 1, "enteredAt": 1, "entry": 1},
            sort=[("entry", -1)],
            limit=1,
        )
    ]
    last = latest[0] if latest else None
    if last is not None:
        if definition.entry == "once" or last["status"] in OPEN:
            return None
        if last["enteredAt"].replace(tzinfo=UTC) > now - timedelta(days=definition.reentryDays):
            return None
    entry = (last["entry"] if last else 0) + 1
    suffix = "" if definition.entry == "once" else f":{event.eventId}"
    state_id = f"{flow_id}:{event.customerId}{suffix}"
    doc = {
        "_id": state_id,
        "flowId": flow_id,
        "version": version,
        "customerId": event.customerId,
        "entry": entry,
        "status": StateStatus.ACTIVE,
        "at": paths.first_of(definition.steps),
        "n": 0,
        "dueAt": None,
        "enteredAt": now,
        "updatedAt": now,
        "trigger": {
            "name": event.name,
            "id": event.eventId,
            "properties": event.properties,
            "at": event.timestamp,
        },
        "reason": "",
    }
    try:
        await states.insert_one(doc)
    except DuplicateKeyError:
        return None  # entered by this event already (a batch handled again)
    return state_id


async def _goals(
    store: TenantStore,
    engine: Engine,
    events: Sequence[Happened],
    customers: dict[str, Doc],
    now: datetime,
) -> None:
    """End, as converted, the open states whose flow's goal one of the events is."""
    by_customer: dict[str, list[Happened]] = {}
    for event in events:
        by_customer.setdefault(event.customerId, []).append(event)
    async for state in store["flow_states"].find(
        {"customerId": {"$in": list(by_customer)}, "status": {"$in": OPEN}},
        projection={"flowId": 1, "version": 1, "customerId": 1, "enteredAt": 1, "trigger": 1},
    ):
        definition = await engine.definition(store, state["flowId"], state["version"])
        goal = definition.goal
        if goal is None:
            continue
        trigger = state.get("trigger") or {}
        since = _utc(trigger.get("at") or state["enteredAt"])
        reached = any(
            (goal.event == e.name or (goal.order and e.name == "order"))
            and e.eventId != trigger.get("id")  # the event that entered them is not a goal
            and after(_utc(e.timestamp), since)
            and holds(goal.where, customers.get(e.customerId, {}), e.properties, now)
            for e in by_customer[state["customerId"]]
        )
        if not reached:
            continue
        moved = await store["flow_states"].update_one(
            {"_id": state["_id"], "status": {"$in": OPEN}},
            {
                "$set": {
                    "status": StateStatus.CONVERTED,
                    "dueAt": None,
                    "reason": "reached the goal",
                    "updatedAt": now,
                }
            },
        )
        if moved.modified_count:
            await engine.emit(
                store,
                "flow.converted",
                {
                    "stateId": state["_id"],
                    "flowId": state["flowId"],
                    "version": state["version"],
                    "customerId": state["customerId"],
                },
            )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def after(goal: datetime, since: datetime) -> bool:
    """Whether a goal dated ``goal`` came after the trigger dated ``since``: at or after
    it, or on its day when the goal has no time of day (an order dated by its day alone
    is at midnight)."""
    if goal >= since:
        return True
    return goal.time() == time(0) and goal.date() >= since.date()


async def _customers(store: TenantStore, ids: Iterable[str]) -> dict[str, Doc]:
    wanted = list(ids)  # a customer's id is text (``crmd.ingest.persist.record_id``)
    found = {}
    async for doc in store["customers"].find({"_id": {"$in": wanted}}):
        found[str(doc["_id"])] = {**doc, "_id": str(doc["_id"])}
    return found


def happened(doc: Doc) -> Happened:
    """A stored event document (``events``) as flows read it."""
    return Happened(
        customerId=str(doc["customerId"]),
        name=str(doc["name"]),
        properties=dict(doc.get("properties") or {}),
        eventId=str(doc.get("eventId") or doc.get("_id")),
        timestamp=doc.get("timestamp") or datetime.now(UTC),
    )
