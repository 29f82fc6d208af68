"""``POST /api/v1/events`` behind the route: check every item, find (or make) the
customers, flag the ids stored already, and put the rest on the events stream in one
entry. The events actor stores them; the caller has its answer once they are queued."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from crmd.config import EventsConfig
from crmd.errors import Unprocessable
from crmd.events import model
from crmd.events.checks import MAX_ERRORS, PostedEvent, Problem, as_utc, check_item, items_of
from crmd.events.customers import Found, create_customers, find_customers
from crmd.events.model import Event, EventBatch, event_record_id
from crmd.segments.slices import CustomerVersions
from crmd.store.tenant import TenantStore


class ItemResult(msgspec.Struct):
    index: int
    status: Literal["accepted", "duplicate"]
    """``duplicate``: an event with this id was posted before (or earlier in this
    request), and is stored once."""
    id: str
    """The event's id: the one posted, else the one crmd gave it."""
    customerId: str


class Accepted(msgspec.Struct):
    accepted: int
    duplicates: int
    items: list[ItemResult]
    """One per posted event, in the order posted."""


def refused(problems: Sequence[Problem], total: int) -> Unprocessable:
    shown = list(problems[:MAX_ERRORS])
    more = f" (the first {len(shown)} are listed)" if len(problems) > len(shown) else ""
    return Unprocessable(
        f"{len(problems)} problem(s) in {total} event(s); nothing was stored{more}",
        code="invalid_events",
        details=[msgspec.structs.asdict(p) for p in shown],
    )


class EventIntake:
    def __init__(
        self, redis: Redis, stream: str, settings: EventsConfig, versions: CustomerVersions
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.settings = settings
        self.versions = versions

    async def post(self, store: TenantStore, body: Any, now: datetime | None = None) -> Accepted:
        """Queue the posted events (all or none); 422 naming each item's problems."""
        now = now or datetime.now(UTC)
        items = items_of(body, self.settings.max_batch)
        if isinstance(items, Problem):
            raise refused([items], len(body) if isinstance(body, list) else 1)
        problems: list[Problem] = []
        events: list[PostedEvent] = []
        for index, raw in enumerate(items):
            checked = check_item(index, raw, self.settings, now)
            if isinstance(checked, list):
                problems += checked
            else:
                events.append(checked)
        unknown = [p for p in problems if p.message.startswith("Object contains unknown field")]
        if isinstance(body, dict) and unknown:  # one event is a body: refused as any body is
            raise Unprocessable(
                unknown[0].message, code="invalid_body", details={"field": f"$.{unknown[0].field}"}
            )
        if problems:
            raise refused(problems, len(items))
        customers = await self.customers(store, [e.customer.strip() for e in events])
        return await self.queue(store, events, customers, now)

    async def customers(self, store: TenantStore, names: list[str]) -> dict[str, Found]:
        found = await find_customers(store, names)
        missing = sorted({n for n in names if n not in found})
        if missing and self.settings.unknown_customer == "create":
            made = await create_customers(store, missing)
            await self.versions.changed(store.user_id, [f.n for f in made.values()])
            found.update(made)
        elif missing:
            unknown = set(missing)
            raise refused(
                [
                    Problem(
                        i,
                        "customer",
                        "no customer has this external id, e-mail or crmd id "
                        '([events] unknown_customer = "refuse")',
                    )
                    for i, name in enumerate(names)
                    if name in unknown
                ],
                len(names),
            )
        return found

    async def queue(
        self,
        store: TenantStore,
        events: list[PostedEvent],
        customers: dict[str, Found],
        now: datetime,
    ) -> Accepted:
        user = store.user_id
        ids = [e.id if e.id is not None else uuid.uuid4().hex for e in events]
        records = [event_record_id(user, i) for i in ids]
        stored = {d["_id"] for d in await store[model.COLLECTION].by_ids(records)}
        source = uuid.uuid4().hex
        results, queued, seen = [], [], set(stored)
        for index, (posted, event_id, record) in enumerate(zip(events, ids, records, strict=True)):
            customer = customers[posted.customer.strip()]
            if record in seen:
                results.append(ItemResult(index, "duplicate", event_id, customer.id))
                continue
            seen.add(record)
            results.append(ItemResult(index, "accepted", event_id, customer.id))
            queued.append(
                Event(
                    id=record,
                    userId=user,
                    customerId=customer.id,
                    name=posted.name,
                    properties=posted.properties,
                    timestamp=as_utc(posted.timestamp) if posted.timestamp else now,
                    eventId=event_id,
                    receivedAt=now,
                    source=source,
                )
            )
        if queued:
            every = {found.id: found.n for found in customers.values()}
            numbers = {e.customerId: every[e.customerId] for e in queued}
            batch = EventBatch(user, queued, numbers)
            await self.redis.xadd(self.stream, {model.FIELD: model.encode(batch)})
        return Accepted(len(queued), len(results) - len(queued), results)
