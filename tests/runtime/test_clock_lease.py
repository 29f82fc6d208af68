"""One clock ticks at a time: a lease in Redis, a fencing token in the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from crmd.app import Crmd, build_actors
from crmd.campaigns import jobs
from crmd.runtime.clock import ClockActor
from crmd.runtime.lease import Lease, fence
from tests.campaigns.conftest import placed
from tests.campaigns.test_clock import schedule
from tests.campaigns.test_delivery_loop import load, wait_status


def clocks(redis: Any, db: Any, name: str, seconds: float, ran: list[str]) -> list[ClockActor]:
    def recorder(who: str) -> Any:
        async def task(now: datetime) -> None:
            ran.append(who)

        return task

    return [
        ClockActor(
            0.05,
            [("record", recorder(who))],
            Lease(redis, name, seconds, holder=who),
            lambda token, now: fence(db, name, token, now),
        )
        for who in ("a", "b")
    ]


async def test_one_clock_ticks_and_the_other_takes_over_when_it_dies(config: Any, system: Crmd):
    name = f"{config.redis.stream_prefix}:clock-test"
    ran: list[str] = []
    a, b = clocks(system.redis, system.db, name, 0.5, ran)
    assert await a.tick()  # first come, first served
    for _ in range(5):
        assert await asyncio.gather(a.tick(), b.tick()) == [True, False]
    assert ran == ["a"] * 6
    # a dies without a word: b stands by until a's lease runs out, then leads.
    waited = 0.0
    while not await b.tick():
        await asyncio.sleep(0.05)
        waited += 0.05
    assert 0.3 <= waited <= 1.0
    assert ran[-1] == "b"
    assert not await a.tick()  # back from the dead: it no longer leads


async def test_a_task_longer_than_the_lease_keeps_it(config: Any, system: Crmd):
    name = f"{config.redis.stream_prefix}:clock-test"
    ran: list[str] = []
    a, b = clocks(system.redis, system.db, name, 0.3, ran)
    assert await a.tick()

    async def slow(now: datetime) -> None:
        ran.append("a-slow")
        await asyncio.sleep(1.2)  # four times the lease

    a.tasks = [("slow", slow)]
    running = asyncio.create_task(a.tick())
    while "a-slow" not in ran:
        await asyncio.sleep(0.01)
    while not running.done():
        assert not await b.tick()  # a still leads: its lease renewed while it worked
        await asyncio.sleep(0.05)
    assert await running
    assert "b" not in ran


async def test_a_clean_stop_hands_the_lease_over_at_once(config: Any, system: Crmd):
    name = f"{config.redis.stream_prefix}:clock-test"
    ran: list[str] = []
    a, b = clocks(system.redis, system.db, name, 30, ran)
    running = asyncio.create_task(a.run())
    while not ran:
        await asyncio.sleep(0.01)
    assert not await b.tick()
    a.request_stop()
    await running
    assert await b.tick()


async def test_a_stale_token_is_fenced_out(config: Any, system: Crmd):
    name = f"{config.redis.stream_prefix}:fence-test"
    now = datetime.now(UTC)
    assert await fence(system.db, name, 2, now) == 2
    assert await fence(system.db, name, 1, now) == 2
    assert await fence(system.db, name, 3, now) == 3


async def test_a_redis_that_lost_its_counter_does_not_fence_clocks_out_for_ever(
    config: Any, system: Crmd
):
    name = f"{config.redis.stream_prefix}:clock-test"
    await fence(system.db, name, 7, datetime.now(UTC))  # from before Redis lost its data
    ran: list[str] = []
    a, _ = clocks(system.redis, system.db, name, 30, ran)
    assert not await a.tick()  # token 1 is fenced out, and the counter moves past 7
    assert await a.tick()
    assert ran == ["a"]
    assert int(await system.redis.get(f"{{{name}}}:token")) == 8


async def test_the_token_is_fenced_once_a_tick_and_a_newer_one_stops_the_next(
    config: Any, system: Crmd
):
    """Fifteen tasks a tick wrote the fence fifteen times: it is written at the first
    task, and a newer holder's token recorded meanwhile (Redis forgot this one) stops
    the holder at its next tick."""
    name = f"{config.redis.stream_prefix}:clock-test"
    ran: list[str] = []
    fenced: list[int] = []

    async def fencing(token: int, now: datetime) -> int:
        fenced.append(token)
        return await fence(system.db, name, token, now)

    async def task(now: datetime) -> None:
        ran.append("task")

    clock = ClockActor(
        0.05,
        [("one", task), ("two", task), ("three", task)],
        Lease(system.redis, name, 30, holder="a"),
        fencing,
    )
    assert await clock.tick() and await clock.tick()
    assert ran == ["task"] * 6
    assert len(fenced) == 2 and fenced[0] == fenced[1]  # once a tick, the same token
    await fence(system.db, name, fenced[0] + 5, datetime.now(UTC))  # a newer holder
    assert not await clock.tick()
    assert ran == ["task"] * 6


async def test_two_clocks_start_a_scheduled_campaign_once(client: Any, auth: Any, delivering: Crmd):
    """Two processes' clocks, as the composition root builds them, on one Redis and one
    database: one leads, and the due campaign is planned once and sent whole."""
    await load(client, auth)
    made = await schedule(client, auth, timedelta(seconds=1))
    first = delivering.actors["clock"]
    second = build_actors(delivering, [])["clock"]
    assert isinstance(first, ClockActor) and isinstance(second, ClockActor)
    for clock in (first, second):
        clock.interval = 0.1
    supervisors = [delivering.start(["clock"])]
    running = asyncio.create_task(second.run())
    try:
        done = await wait_status(client, auth, made["id"], "completed")
        assert sorted([first.leading, second.leading]) == [False, True]
        assert {first.detail, second.detail} == {"leading", "standing by"}
        assert min(first.ticks, second.ticks) == 0 < max(first.ticks, second.ticks)
    finally:
        second.request_stop()
        await running
        for supervisor in supervisors:
            await supervisor.stop(5)
    plans = [
        job
        for _, fields in await delivering.redis.xrange(delivering.streams.dispatch)
        if (job := jobs.decode(fields[jobs.FIELD])).kind == "plan" and job.campaign == made["id"]
    ]
    assert len(plans) == 1
    assert sum(placed(done["stats"]).values()) == done["audienceSize"] == 200
    assert done["stats"]["pending"] == 0
