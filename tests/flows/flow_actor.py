"""A worker running flows (the ``flows``, ``clock`` and ``dispatch`` actors) in a process
of its own that can be SIGKILLed at a named point, for ``test_flow_crashes``.

Usage: python -m tests.flows.flow_actor MONGO_URL DATABASE REDIS_URL PREFIX FLOW
       [POINT CALL]

Runs until every state of flow FLOW has left it and every message of the flow was
handed to the recording vendor (``tests.campaigns.crash_actor``), then exits 0. With
POINT, the process SIGKILLs itself at the CALL-th time it gets there:

- ``recorded``: a send step's record is in ``flow_steps``, before its effect (the
  message's log and send job);
- ``applied``: a send step's effect is written (its log, its send job queued), before
  the state moves on;
- ``firing``: the clock made a batch of due states active, before it queues them (they
  are stranded: the clock's stranded check queues them again).

The kill waits, at its point, for no vendor hand-over to be in progress in this
process: a hand-over cut between the vendor's answer and its record is handed over
again, by the vendor's idempotency key (``crmd.campaigns.dispatch``'s contract, killed
in ``tests/campaigns/test_effect_crashes.py``), and this test counts the flows' own
hand-overs, which must be one per message.

``STRANDED_AFTER`` in the environment (seconds) shortens how long an active state waits
before the clock queues it again (``crmd.flows.timers.STRANDED_AFTER``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import crmd.campaigns.actor as dispatch_actor
import crmd.flows.timers as timers
from crmd.app import Crmd
from crmd.flows import checks
from crmd.flows.engine import Engine
from tests.actor_process import process_crmd
from tests.campaigns.crash_actor import Recorder

WORKER = ("flows", "clock", "dispatch")


class HandOvers:
    """The dispatch actor's chunks in progress in this process."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.running = 0
        self.point = ""
        self.idle = asyncio.Event()
        self.idle.set()
        original = dispatch_actor.send_chunk  # type: ignore[attr-defined]  # (its import)

        async def send_chunk(*args: Any, **kwargs: Any) -> Any:
            self.running += 1
            self.idle.clear()
            try:
                return await original(*args, **kwargs)
            finally:
                self.running -= 1
                if not self.running:
                    self.idle.set()

        dispatch_actor.send_chunk = send_chunk  # type: ignore[attr-defined]  # (found per call)

    async def die(self, note: dict[str, Any]) -> None:
        """Write where it died (``kills``: the test checks what it left), then SIGKILL."""
        await self.idle.wait()
        await self.db.kills.insert_one({"point": self.point, **note})
        os.kill(os.getpid(), signal.SIGKILL)


def die_after_step(
    name: str, kinds: set[str], call: int, handovers: HandOvers, step_arg: int
) -> None:
    """SIGKILL right after the ``call``-th run of ``Engine.<name>`` for a step of one of
    ``kinds`` (the step is its ``step_arg``-th positional argument)."""
    original = getattr(Engine, name)
    calls = 0

    async def wrapper(*args: Any) -> Any:
        nonlocal calls
        result = await original(*args)
        kind = checks.kind_of(args[step_arg])
        if kind in kinds:
            calls += 1
            if calls == call:
                state = args[2]
                await handovers.die({"state": state.id, "n": state.n, "kind": kind})
        return result

    setattr(Engine, name, wrapper)


def die_before_queueing(call: int, handovers: HandOvers) -> None:
    """SIGKILL when the clock is about to queue the ``call``-th batch of due states it
    made active."""
    original = timers.fire_due
    batches = 0

    async def fire_due(db: Any, queue: Callable[..., Any], *args: Any) -> int:
        async def queue_or_die(store: Any, states: list[str]) -> None:
            nonlocal batches
            if states:
                batches += 1
                if batches == call:
                    await handovers.die({"states": states})
            await queue(store, states)

        return await original(db, queue_or_die, *args)

    timers.fire_due = fire_due  # type: ignore[assignment]  # (crmd.actors calls timers.fire_due)


def arm(point: str, call: int, handovers: HandOvers) -> None:
    handovers.point = point
    if point == "recorded":  # Engine._decide(self, store, state, definition, step, ...)
        die_after_step("_decide", {"send"}, call, handovers, 4)
    elif point == "applied":  # Engine._apply(self, store, state, step, ...)
        die_after_step("_apply", {"send"}, call, handovers, 3)
    elif point == "firing":
        die_before_queueing(call, handovers)
    else:
        raise SystemExit(f"no such point: {point}")


async def finished(system: Crmd, flow: str) -> bool:
    """Every state has left the flow and every message of it is with the vendor."""
    db = system.db
    if not await db.flow_states.count_documents({"flowId": flow}):
        return False
    if await db.flow_states.count_documents(
        {"flowId": flow, "status": {"$in": ["active", "waiting"]}}
    ):
        return False
    campaigns = [str(c["_id"]) async for c in db.campaigns.find({"flowId": flow})]
    unsent = {"campaignId": {"$in": campaigns}, "status": "PENDING", "vendorMessageId": None}
    return not await db.communication_log.count_documents(unsent)


async def main(argv: list[str]) -> None:
    mongo_url, database, redis_url, prefix, flow = argv[:5]
    if os.environ.get("STRANDED_AFTER"):
        timers.STRANDED_AFTER = timedelta(seconds=float(os.environ["STRANDED_AFTER"]))
    consumer = os.environ.get("CONSUMER") or "flows-under-test"
    async with process_crmd(
        mongo_url,
        database,
        redis_url,
        prefix,
        consumer,
        plugins={"recorder": Recorder(mongo_url, database)},
        flows__time_scale=float(os.environ.get("TIME_SCALE", "3600")),
        campaigns__clock_interval_seconds=0.5,
        campaigns__clock_lease_seconds=1.5,
        streams__claim_idle_ms=1000,
        streams__claim_interval_ms=200,
    ) as system:
        handovers = HandOvers(system.db)
        if len(argv) > 6:
            arm(argv[5], int(argv[6]), handovers)
        supervisor = system.start(WORKER)
        assert await supervisor.wait_healthy(10)
        while not await finished(system, flow):
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
