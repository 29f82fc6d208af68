"""The actors a campaign's experiment goes through, each in a process of its own that can
be SIGKILLed at a named point, for ``test_effect_crashes``.

Usage: python -m tests.campaigns.effect_actor KIND MONGO_URL DATABASE REDIS_URL PREFIX
       TARGET [POINT CALL]

dispatch: plans and sends campaign TARGET through ``crash_actor``'s recording vendor
until it is ``testing`` (an A/B test's share is out), ``sent`` or ``completed``.
``PLAN_STRETCH`` in the environment makes planning's stretches that many customers.

clock: runs the clock's ticks until campaign TARGET has its winner and the job planning
the rest is queued.

ingest: stores upload TARGET until it is done (orders are attributed as they are stored).

With POINT, the process SIGKILLs itself at the CALL-th time it gets there:

- ``chunks``: planning wrote a batch of chunks and queued their send jobs;
- ``next-plan``: planning queued the next stretch's job, before recording its stretch;
- ``handed``: a vendor batch was handed over and recorded, before its chunk is acked;
- ``decided``: the winner was recorded (the campaign queued again), before the job
  planning the rest is queued;
- ``attributed``: an orders chunk's attributions are written, before the campaigns they
  touched are marked for their results to be summed (and before the chunk is acked).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from bson import ObjectId

import crmd.campaigns.attribution as attribution
import crmd.campaigns.dispatch as dispatch
import crmd.campaigns.planning as planning
import crmd.campaigns.winner as winner
from crmd.app import Crmd
from crmd.campaigns import jobs
from crmd.runtime.clock import ClockActor
from crmd.streams.actor import StreamActor
from tests.actor_process import die_at, process_crmd, run_until
from tests.campaigns.crash_actor import Recorder


def die_after_next_plan(call: int) -> None:
    """SIGKILL right after the ``call``-th publish that queues a plan job."""
    original = jobs.publish
    calls = 0

    async def publish(redis: Any, stream: str, queued: list[jobs.DispatchJob]) -> None:
        nonlocal calls
        await original(redis, stream, queued)
        if any(job.kind == "plan" for job in queued):
            calls += 1
            if calls == call:
                os.kill(os.getpid(), signal.SIGKILL)

    jobs.publish = publish  # type: ignore[assignment]  # (planning calls jobs.publish)


def arm(point: str, call: int) -> None:
    if point == "chunks":
        die_at(planning, "_write_chunks", call)
    elif point == "next-plan":
        die_after_next_plan(call)
    elif point == "handed":
        die_at(dispatch, "_record", call)
    elif point == "decided":
        die_at(winner, "move", call)
    elif point == "attributed":
        die_at(attribution, "mark_dirty", call, before=True)
    else:
        raise SystemExit(f"no such point: {point}")


async def campaign_status(system: Crmd, campaign: str) -> dict[str, Any]:
    found = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
    assert found is not None
    return found


async def run_dispatch(system: Crmd, campaign: str) -> None:
    async def done() -> bool:
        found = await campaign_status(system, campaign)
        return bool(found["status"] in ("testing", "sent", "completed"))

    actor = system.actors["dispatch"]
    assert isinstance(actor, StreamActor)
    await run_until(actor.worker, done)


async def run_clock(system: Crmd, campaign: str) -> None:
    clock = system.actors["clock"]
    assert isinstance(clock, ClockActor)
    stream = system.streams.dispatch
    while True:
        await clock.tick()
        found = await campaign_status(system, campaign)
        if found.get("winner") and campaign in await jobs.awaiting_plan(system.redis, stream):
            return
        await asyncio.sleep(0.1)


async def run_ingest(system: Crmd, upload: str) -> None:
    async def done() -> bool:
        found = await system.db.uploads.find_one({"_id": ObjectId(upload)})
        return bool(found and found["status"] == "done")

    actor = system.actors["ingest"]
    assert isinstance(actor, StreamActor)
    await run_until(actor.worker, done)


async def main(argv: list[str]) -> None:
    kind, mongo_url, database, redis_url, prefix, target = argv[:6]
    if len(argv) > 7:
        arm(argv[6], int(argv[7]))
    if os.environ.get("PLAN_STRETCH"):
        planning.PLAN_STRETCH = int(os.environ["PLAN_STRETCH"])
    consumer = os.environ.get("CONSUMER") or f"{kind}-under-test"
    recorder = Recorder(mongo_url, database)
    async with process_crmd(
        mongo_url,
        database,
        redis_url,
        prefix,
        consumer,
        plugins={"recorder": recorder},
        campaigns__clock_interval_seconds=0.5,
        campaigns__clock_lease_seconds=2.0,
    ) as system:
        run = {"dispatch": run_dispatch, "clock": run_clock, "ingest": run_ingest}[kind]
        await run(system, target)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
