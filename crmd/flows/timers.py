"""The clock's part in flows: hand the states whose wait is over back to the engine.

A waiting state is one document with ``dueAt``; the clock reads the due ones, oldest
first, at most ``batch`` a tick (index ``{status, dueAt}``), makes each ``active`` on
condition that it still waits for the same time, and queues them on the flows stream.
A state made active whose job was lost (Redis restarted, a crash between the update and
the queueing) is queued again once it has not moved for ``stranded_after``: a job run
twice runs no step twice (``crmd.flows.engine``).

How late timers fire (the lag: the time they were handed over less their ``dueAt``) is
kept for ``/metrics`` and for the flows actor's ``/readyz`` detail.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from crmd.flows.actor import FIELD, Queue, decode_job
from crmd.flows.model import StateStatus
from crmd.store.tenant import TenantStore
from crmd.streams import GROUP
from crmd.streams.backlog import unacknowledged

STRANDED_AFTER = timedelta(minutes=2)
TICK_BUDGET = 2.0
"""Seconds a tick may spend handing due states over, batch after batch, before the
clock's other tasks have their turn."""


@dataclass
class Lag:
    """The lags of the timers fired lately (seconds), for a percentile; also observed
    into ``histogram`` (``crmd_flow_timer_lag_seconds``) when given."""

    histogram: Any = None
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    fired: int = 0

    def add(self, seconds: float) -> None:
        late = max(0.0, seconds)
        self.recent.append(late)
        self.fired += 1
        if self.histogram is not None:
            self.histogram.observe(late)

    def percentile(self, share: float) -> float:
        if not self.recent:
            return 0.0
        ordered = sorted(self.recent)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def detail(self) -> str:
        if not self.recent:
            return "no timer fired yet"
        return f"timer lag p99 {self.percentile(0.99):.2f} s over {len(self.recent)} fired"


async def fire_due(
    db: AsyncDatabase[dict[str, Any]],
    queue: Queue,
    now: datetime,
    batch: int,
    lag: Lag,
    budget: float = TICK_BUDGET,
) -> int:
    """Queue the states whose wait is over, ``batch`` at a time, for up to ``budget``
    seconds of this tick; how many were. Each batch is one read and one update per
    tenant: a state made active twice (two clocks at once) is queued twice, and runs
    once (``crmd.flows.engine``)."""
    started = time.monotonic()
    fired = 0
    while True:
        due = {"status": StateStatus.WAITING, "dueAt": {"$lte": now}}
        found = [
            d
            async for d in db.flow_states.find(
                due, projection={"userId": 1, "dueAt": 1}, sort=[("dueAt", 1)], limit=batch
            )
        ]
        by_user: dict[str, list[Any]] = defaultdict(list)
        for doc in found:
            by_user[doc["userId"]].append(doc)
        for user, docs in by_user.items():
            store = TenantStore(db, user)
            ids = [d["_id"] for d in docs]
            await store["flow_states"].update_many(
                {"_id": {"$in": ids}, **due},
                {"$set": {"status": StateStatus.ACTIVE, "updatedAt": now}},
            )
            await queue(store, ids)
            for doc in docs:
                lag.add((now - doc["dueAt"].replace(tzinfo=UTC)).total_seconds())
        fired += len(found)
        if len(found) < batch or time.monotonic() - started > budget:
            return fired


async def requeue_stranded(
    db: AsyncDatabase[dict[str, Any]],
    redis: Redis,
    stream: str,
    queue: Queue,
    now: datetime,
    batch: int,
) -> int:
    """Queue again the active states that have not moved for ``STRANDED_AFTER`` and
    whose job is not waiting on the stream (nor in a consumer's hands): lost with Redis,
    or never queued. A state whose job only waits behind others is left; each state
    looked at is marked, so it is looked at again only after ``STRANDED_AFTER``."""
    bound = now - STRANDED_AFTER
    stale = {"status": StateStatus.ACTIVE, "updatedAt": {"$lte": bound}}
    found = [d async for d in db.flow_states.find(stale, projection={"userId": 1}, limit=batch)]
    if not found:
        return 0
    waiting = await waiting_states(redis, stream)
    by_user: dict[str, list[str]] = defaultdict(list)
    for doc in found:
        store = TenantStore(db, doc["userId"])
        touched = await store["flow_states"].update_one(
            {"_id": doc["_id"], **stale}, {"$set": {"updatedAt": now}}
        )
        if touched.modified_count and doc["_id"] not in waiting:
            by_user[doc["userId"]].append(doc["_id"])
    for user, ids in by_user.items():
        await queue(TenantStore(db, user), ids)
    return sum(len(ids) for ids in by_user.values())


async def waiting_states(redis: Redis, stream: str) -> set[str]:
    """The states with a job on the flows stream not yet acknowledged."""
    states = set()
    async for _, fields in unacknowledged(redis, stream, GROUP):
        try:
            states.add(decode_job(fields[FIELD]).state)
        except (KeyError, msgspec.DecodeError):
            continue
    return states
