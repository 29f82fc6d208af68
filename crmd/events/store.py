"""Storing events: once per (tenant, event id), safe to repeat, and the customers'
newest-first times of each event (``eventTimes.<name>``, what rules count) kept with them.

Events are inserted unordered; an id stored already is a duplicate and skipped. The
times of the new ones are pushed onto their customers (sorted, cut at ``TIMES_KEPT``).
A push is not idempotent, so a batch written again after a crash (its events found
stored, by the same ``source``) sets those customers' times afresh from the events
themselves instead; the events are then told again (at least once), while a duplicate
posted by a caller (another source) is neither counted nor told twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from crmd.events.model import COLLECTION, Event
from crmd.segments.ast import EVENT_TIMES, TIMES_KEPT
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new

Changed = Callable[[str, Iterable[int]], Awaitable[None]]
"""Told the user and the numbers of the customers whose times moved
(``crmd.segments.slices.CustomerVersions.changed``)."""


async def _unchanged(user: str, numbers: Iterable[int]) -> None:
    return None


async def store_events(
    store: TenantStore,
    events: Sequence[Event],
    numbers: dict[str, int] | None = None,
    changed: Changed = _unchanged,
) -> list[Event]:
    """Store ``events`` (all of one ``source``); the ones to tell ``after_store``: those
    stored now, and those this source had stored before (a redelivery)."""
    if not events:
        return []
    collection = store[COLLECTION]
    present = set(
        await insert_new(collection.insert_many([e.document() for e in events], ordered=False))
    )
    new = [e for i, e in enumerate(events) if i not in present]
    again: list[Event] = []
    if present:
        sources = {e.source for e in events}
        found = await collection.by_ids([events[i].id for i in present], projection={"source": 1})
        mine = {d["_id"] for d in found if d.get("source") in sources}
        again = [events[i] for i in sorted(present) if events[i].id in mine]
    # Where a redelivery touches a customer's event, its times are set from the stored
    # events (which hold the new ones too); elsewhere the new times are pushed.
    redone = {(e.customerId, e.name) for e in again}
    await push_times(store, [e for e in new if (e.customerId, e.name) not in redone])
    await reset_times(store, redone)
    told = new + again
    known = numbers or {}
    await changed(store.user_id, {known.get(e.customerId, 0) for e in told})
    return told


async def push_times(store: TenantStore, events: Iterable[Event]) -> None:
    """Add the events' times to their customers: one update per customer."""
    times: dict[str, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for event in events:
        times[event.customerId][event.name].append(event.timestamp)
    updates = [
        (
            {"_id": customer},
            {
                "$push": {
                    f"{EVENT_TIMES}.{name}": {
                        "$each": sorted(moments, reverse=True),
                        "$sort": -1,
                        "$slice": TIMES_KEPT,
                    }
                    for name, moments in names.items()
                }
            },
        )
        for customer, names in times.items()
    ]
    if updates:
        await store["customers"].bulk_update(updates)


async def reset_times(store: TenantStore, pairs: Iterable[tuple[str, str]]) -> None:
    """Set each (customer, event name)'s times from the stored events: idempotent."""
    updates: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for customer, name in sorted(pairs):
        cursor = store[COLLECTION].find(
            {"customerId": customer, "name": name},
            projection={"timestamp": 1},
            sort=[("timestamp", -1)],
            limit=TIMES_KEPT,
        )
        times = [d["timestamp"] async for d in cursor]
        updates.append(({"_id": customer}, {"$set": {f"{EVENT_TIMES}.{name}": times}}))
    if updates:
        await store["customers"].bulk_update(updates)
