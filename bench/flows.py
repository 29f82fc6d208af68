"""The flows figures' parts: events taken in and stored, customers run through a flow,
and how late timers fire with many customers waiting.

One user of its own has ``n`` customers (uploaded as CSV) and one active flow, trigger
``signup`` → wait 1 h → send (the measured crmd runs with ``[flows] time_scale = 3600``,
so the wait is a second). Then:

1. ``n`` ``visit`` events, which no flow listens to, posted in batches of 1,000: how
   fast they are accepted (the API's answers) and stored (the ``events`` collection),
   against the raw ``insert_many`` of the same documents into a collection with the
   same indexes; crmd's writes and CPU per event;
2. ``n`` ``signup`` events: every customer enters, waits, and is sent one message; from
   the first post until every state is done, less the wait, is the steps' time (two
   steps a customer: the wait and the send); what this costs beyond the same number of
   ``visit`` events is the steps' writes and CPU;
3. ``waiting`` states written straight into ``flow_states`` (of a flow whose only step
   is a wait, so each ends when its wait does), due over ``spread`` seconds: each
   state's lateness is the time it was done less its due time (``updatedAt`` less
   ``dueAt``), whose 99th percentile is the timer lag.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any

import msgspec

from bench.data import write_customers
from bench.server import Api, Spent, spending, upload_csv
from crmd.store.indexes import INDEXES

EVENT_BATCH = 1000
TIME_SCALE = 3600.0
"""As the measured crmd's ``[flows] time_scale``."""
WAIT = "1h"
WAIT_SECONDS = 3600 / TIME_SCALE
STATE_BATCH = 5000


class FlowsMeasured(msgspec.Struct):
    events: int
    accept_seconds: float
    store_seconds: float
    raw_seconds: float
    event_spent: Spent
    steps: int
    step_seconds: float
    step_spent: Spent
    waiting: int
    lag_p50: float
    lag_p99: float
    lag_max: float


async def measure_flows(
    api: Api,
    db: Any,
    pid: int,
    work: Path,
    n: int,
    waiting: int,
    say: Callable[[str], None],
) -> FlowsMeasured:
    user = await _user_of(api)
    path = work / "flow_customers.csv"
    write_customers(path, n, "F")
    upload, _ = await upload_csv(api, path)
    await _until(lambda: _upload_done(api, upload), "the customers to be stored", 1800)
    flow = await api.call(
        "POST",
        "/api/v1/flows",
        expect=201,
        json={
            "name": "Welcome",
            "status": "active",
            "trigger": {"event": "signup"},
            "steps": [{"wait": WAIT}, {"send": {"message": "Welcome, {name}!"}}],
        },
    )
    say(f"  {n:,} customers and a flow; posting {n:,} events no flow listens to")

    async with spending(api.http, api.base, pid) as event_spent:
        started = perf_counter()
        await _post_events(api, n, "visit")
        accepted = perf_counter() - started
        await _until(lambda: _stored(db, user, "visit", n), "the events to be stored", 1800)
        stored = perf_counter() - started
    raw = await _raw_events(db, user, n)
    say(f"  accepted in {accepted:.1f} s, stored in {stored:.1f} s (raw insert {raw:.1f} s)")

    async with spending(api.http, api.base, pid) as both:
        started = perf_counter()
        await _post_events(api, n, "signup")
        await _until(lambda: _done(db, flow["id"], n), "every customer through the flow", 3600)
        through = perf_counter() - started
    steps = 2 * n
    step_spent = Spent(both.documents - event_spent.documents, both.cpu - event_spent.cpu)
    say(f"  {n:,} customers through trigger, wait and send in {through:.1f} s")

    lags = await _timer_lag(api, db, user, waiting, say)
    return FlowsMeasured(
        events=n,
        accept_seconds=accepted,
        store_seconds=stored,
        raw_seconds=raw,
        event_spent=event_spent,
        steps=steps,
        step_seconds=max(through - WAIT_SECONDS, 1e-6),
        step_spent=step_spent,
        waiting=waiting,
        lag_p50=_quantile(lags, 0.5),
        lag_p99=_quantile(lags, 0.99),
        lag_max=max(lags) if lags else 0.0,
    )


async def _user_of(api: Api) -> str:
    me = await api.call("GET", "/api/v1/user/me")
    return str(me["user"]["id"])


async def _post_events(api: Api, n: int, name: str) -> None:
    for start in range(0, n, EVENT_BATCH):
        batch = [
            {"customer": f"F{i}", "name": name, "id": f"{name}-{i}", "properties": {"i": i}}
            for i in range(start, min(n, start + EVENT_BATCH))
        ]
        await api.call("POST", "/api/v1/events", expect=202, json=batch)


async def _until(check: Callable[[], Any], what: str, timeout: float) -> None:
    deadline = perf_counter() + timeout
    while not await check():
        if perf_counter() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def _upload_done(api: Api, upload: str) -> bool:
    job = await api.call("GET", f"/api/v1/uploads/{upload}")
    if job["status"] == "failed":
        raise RuntimeError(f"upload failed: {job.get('reason')}")
    return bool(job["status"] == "done")


async def _stored(db: Any, user: str, name: str, n: int) -> bool:
    return bool(await db.events.count_documents({"userId": user, "name": name}) >= n)


async def _done(db: Any, flow: str, n: int) -> bool:
    done = await db.flow_states.count_documents({"flowId": flow, "status": "done"})
    return bool(done >= n)


async def _raw_events(db: Any, user: str, n: int) -> float:
    """The limit: the events crmd stored, inserted again into an empty collection with
    the same indexes, in the batches they were posted in."""
    docs = [d async for d in db.events.find({"userId": user, "name": "visit"}, batch_size=5000)]
    await db.drop_collection("bench_raw_events")
    raw = db.bench_raw_events
    if INDEXES.get("events"):
        await raw.create_indexes(list(INDEXES["events"]))
    started = perf_counter()
    for start in range(0, len(docs), EVENT_BATCH):
        await raw.insert_many(docs[start : start + EVENT_BATCH], ordered=False)
    seconds = perf_counter() - started
    await db.drop_collection("bench_raw_events")
    return seconds


async def _timer_lag(
    api: Api, db: Any, user: str, waiting: int, say: Callable[[str], None]
) -> list[float]:
    """``waiting`` states of a wait-only flow, due over a span the engine can keep up
    with at its measured pace; their lateness in seconds."""
    flow = await api.call(
        "POST",
        "/api/v1/flows",
        expect=201,
        json={
            "name": "Waits",
            "status": "active",
            "trigger": {"event": "never"},
            "steps": [{"wait": WAIT}],
        },
    )
    flow_id = flow["id"]
    spread = max(10.0, waiting / 2000)
    start = datetime.now(UTC) + timedelta(seconds=5)
    say(f"  {waiting:,} customers waiting, due over {spread:.0f} s")
    dues: dict[str, datetime] = {}
    for first in range(0, waiting, STATE_BATCH):
        docs = []
        for i in range(first, min(waiting, first + STATE_BATCH)):
            due = start + timedelta(seconds=spread * i / waiting)
            dues[f"{flow_id}:W{i}"] = due
            docs.append(
                {
                    "_id": f"{flow_id}:W{i}",
                    "userId": user,
                    "flowId": flow_id,
                    "version": 1,
                    "customerId": f"W{i}",
                    "entry": 1,
                    "status": "waiting",
                    "at": "",
                    "n": 1,
                    "dueAt": due,
                    "enteredAt": start,
                    "updatedAt": start,
                    "trigger": {},
                    "reason": "",
                }
            )
        await db.flow_states.insert_many(docs, ordered=False)
    # A state at the end of its steps whose customer is not there leaves the flow as
    # exited; either way its updatedAt is when its wait was handled.
    await _until(lambda: _left(db, flow_id, waiting), "the waiting customers to be handled", 3600)
    lags = []
    async for doc in db.flow_states.find({"flowId": flow_id}, projection={"updatedAt": 1}):
        lags.append((doc["updatedAt"] - dues[doc["_id"]]).total_seconds())
    return lags


async def _left(db: Any, flow: str, n: int) -> bool:
    left = await db.flow_states.count_documents(
        {"flowId": flow, "status": {"$in": ["done", "exited"]}}
    )
    return bool(left >= n)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
