"""The stream worker against a real Redis and a real MongoDB-wire server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from pymongo import UpdateOne

from crmd.config import Config, StreamsConfig
from crmd.services.connect import MongoClient
from crmd.streams.worker import Entry, StreamWorker, dead_letter_stream, ensure_group

GROUP = "crmd"
HERE = Path(__file__).parent


def settings(config: Config, **changes: Any) -> StreamsConfig:
    """Short enough to watch a reclaim happen (the handlers here take milliseconds)."""
    return msgspec.structs.replace(config.streams, **{"claim_idle_ms": 300, **changes})


async def add(redis: Any, stream: str, count: int, start: int = 0) -> list[str]:
    ids = []
    for n in range(start, start + count):
        ids.append((await redis.xadd(stream, {"n": str(n)})).decode())
    return ids


def storing_handler(mongo: MongoClient, config: Config, poison: set[int] | None = None) -> Any:
    """Idempotent: one document per entry, keyed by its ``n``."""
    collection = mongo[config.mongodb.database].items

    async def handler(entries: Sequence[Entry]) -> None:
        for entry in entries:
            if poison and int(entry.fields[b"n"]) in poison:
                raise ValueError(f"cannot apply n={int(entry.fields[b'n'])}")
        await collection.bulk_write(
            [
                UpdateOne({"_id": int(e.fields[b"n"])}, {"$set": {"entry": e.id}}, upsert=True)
                for e in entries
            ],
            ordered=False,
        )

    return handler


async def run_until(worker: StreamWorker, done: Any, timeout: float = 20) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(timeout):
            while not await done():
                assert not task.done(), task.exception()
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout)


async def pending(redis: Any, stream: str) -> int:
    return int((await redis.xpending(stream, GROUP))["pending"])


async def test_entries_are_applied_then_acked(config: Config, redis: Any, mongo: MongoClient):
    stream = f"{config.redis.stream_prefix}:work"
    await add(redis, stream, 25)  # before any group exists: still consumed
    items = mongo[config.mongodb.database].items
    worker = StreamWorker(
        redis, stream, GROUP, "c1", storing_handler(mongo, config), settings(config, batch_size=10)
    )

    async def done() -> bool:
        return await items.count_documents({}) == 25 and await pending(redis, stream) == 0

    await run_until(worker, done)
    assert sorted(await items.distinct("_id")) == list(range(25))


async def test_failing_entry_goes_to_dead_letters_and_its_batch_commits(
    config: Config, redis: Any, mongo: MongoClient
):
    stream = f"{config.redis.stream_prefix}:work"
    ids = await add(redis, stream, 10)
    items = mongo[config.mongodb.database].items
    worker = StreamWorker(
        redis,
        stream,
        GROUP,
        "c1",
        storing_handler(mongo, config, {4}),
        settings(config, batch_size=10, max_deliveries=3),
    )
    dead = dead_letter_stream(stream)

    async def done() -> bool:
        return await redis.xlen(dead) == 1 and await pending(redis, stream) == 0

    await run_until(worker, done)
    assert sorted(await items.distinct("_id")) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    [(_, letter)] = await redis.xrange(dead)
    assert letter[b"n"] == b"4"
    assert letter[b"_dead_source_id"].decode() == ids[4]
    assert letter[b"_dead_deliveries"] == b"3"
    assert letter[b"_dead_error"] == b"ValueError: cannot apply n=4"


async def test_second_consumer_reclaims_a_dead_consumers_entries(
    config: Config, redis: Any, mongo: MongoClient
):
    stream = f"{config.redis.stream_prefix}:work"
    await ensure_group(redis, stream, GROUP)
    await add(redis, stream, 12)
    # "dead" reads everything and then dies without acking.
    taken = await redis.xreadgroup(GROUP, "dead", {stream: ">"}, count=100)
    assert len(taken[0][1]) == 12
    items = mongo[config.mongodb.database].items
    survivor = StreamWorker(
        redis, stream, GROUP, "alive", storing_handler(mongo, config), settings(config)
    )

    async def done() -> bool:
        return await items.count_documents({}) == 12 and await pending(redis, stream) == 0

    await run_until(survivor, done)
    consumers = {c["name"]: c["pending"] for c in await redis.xinfo_consumers(stream, GROUP)}
    assert consumers[b"dead"] == 0


async def test_own_pending_entries_are_drained_first_at_start(
    config: Config, redis: Any, mongo: MongoClient
):
    stream = f"{config.redis.stream_prefix}:work"
    await ensure_group(redis, stream, GROUP)
    await add(redis, stream, 5)
    await redis.xreadgroup(GROUP, "c1", {stream: ">"}, count=100)  # taken, never acked
    await add(redis, stream, 5, start=5)
    seen: list[int] = []
    store = storing_handler(mongo, config)

    async def recording(entries: Sequence[Entry]) -> None:
        seen.extend(int(e.fields[b"n"]) for e in entries)
        await store(entries)

    # claim_idle is long: only the drain at start can pick the five pending ones up.
    worker = StreamWorker(
        redis, stream, GROUP, "c1", recording, settings(config, claim_idle_ms=3_600_000)
    )

    async def done() -> bool:
        return len(set(seen)) == 10 and await pending(redis, stream) == 0

    await run_until(worker, done)
    assert seen[:5] == [0, 1, 2, 3, 4]


async def test_trim_never_removes_pending_or_undelivered_entries(config: Config, redis: Any):
    stream = f"{config.redis.stream_prefix}:work"
    await ensure_group(redis, stream, GROUP)
    ids = await add(redis, stream, 10)
    await redis.xreadgroup(GROUP, "c1", {stream: ">"}, count=6)  # delivers 0..5
    await redis.xack(stream, GROUP, ids[0], ids[1], ids[3], ids[4])  # 2 and 5 stay pending

    async def noop(entries: Sequence[Entry]) -> None:
        return None

    worker = StreamWorker(redis, stream, GROUP, "c1", noop, settings(config))
    removed = await worker.trim()
    assert removed == 2  # only 0 and 1: everything from the oldest pending (2) stays
    left = [i.decode() for i, _ in await redis.xrange(stream)]
    assert left == ids[2:]
    # A second group that has read nothing holds everything back.
    await redis.xgroup_create(stream, "other", id="0")
    assert await worker.trim() == 0
    assert await redis.xlen(stream) == 8


async def test_stop_finishes_and_acks_the_batch_in_hand(
    config: Config, redis: Any, mongo: MongoClient
):
    stream = f"{config.redis.stream_prefix}:work"
    await add(redis, stream, 10)
    started, release = asyncio.Event(), asyncio.Event()
    store = storing_handler(mongo, config)

    async def slow(entries: Sequence[Entry]) -> None:
        started.set()
        await release.wait()
        await store(entries)

    worker = StreamWorker(redis, stream, GROUP, "c1", slow, settings(config, batch_size=10))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 10)
    stop.set()  # asked to stop while the batch is in the handler
    release.set()
    await asyncio.wait_for(task, 10)
    assert await mongo[config.mongodb.database].items.count_documents({}) == 10
    assert await pending(redis, stream) == 0


@pytest.mark.slow  # kills a process
async def test_sigkill_after_commit_before_ack_applies_every_entry_exactly_once(
    config: Config, redis: Any, mongo: MongoClient
):
    stream = f"{config.redis.stream_prefix}:work"
    await add(redis, stream, 50)
    db = mongo[config.mongodb.database]
    argv = [
        sys.executable,
        str(HERE / "kill_worker.py"),
        config.mongodb.url,
        config.mongodb.database,
        config.redis.url,
        stream,
        "w1",
        "50",
    ]

    killed = await asyncio.to_thread(subprocess.run, [*argv, "2"], timeout=60)
    assert killed.returncode == -9
    # Two batches committed; the second was never acked.
    assert await db.items.count_documents({}) == 20
    assert await pending(redis, stream) == 10

    restarted = await asyncio.to_thread(subprocess.run, argv, timeout=60)
    assert restarted.returncode == 0
    assert sorted(await db.items.distinct("_id")) == list(range(50))
    assert await pending(redis, stream) == 0
    # The unacked batch was applied a second time, idempotently; nothing else was.
    twice = await db.applications.aggregate(
        [
            {"$group": {"_id": "$n", "times": {"$sum": 1}}},
            {"$match": {"times": {"$gt": 1}}},
        ]
    )
    assert sorted([doc["_id"] async for doc in twice]) == list(range(10, 20))


async def test_a_handler_past_its_deadline_is_cancelled_and_its_entry_redelivered(
    config: Config, redis: Any
):
    stream = f"{config.redis.stream_prefix}:slow"
    [entry_id] = await add(redis, stream, 1)
    calls: list[str] = []
    cancelled = asyncio.Event()

    async def hangs_the_first_time(entries: Sequence[Entry]) -> None:
        calls.append(entries[0].id)
        if len(calls) == 1:
            try:
                await asyncio.Event().wait()  # never set: only the deadline ends this
            except asyncio.CancelledError:
                cancelled.set()
                raise

    worker = StreamWorker(
        redis,
        stream,
        GROUP,
        "c1",
        hangs_the_first_time,
        settings(config, handler_timeout_ms=200, claim_idle_ms=400, claim_interval_ms=50),
    )

    async def done() -> bool:
        return len(calls) == 2 and await pending(redis, stream) == 0

    await run_until(worker, done)
    assert cancelled.is_set()
    assert calls == [entry_id, entry_id]  # the same entry, taken up again at once


async def test_work_in_progress_is_held_past_the_idle_time(config: Config, redis: Any):
    """A batch handled for five times ``claim_idle_ms`` is renewed meanwhile: the other
    consumer, reclaiming all the while, never takes it, and it is applied once."""
    stream = f"{config.redis.stream_prefix}:held"
    [entry_id] = await add(redis, stream, 1)
    seen: dict[str, list[str]] = {"slow": [], "other": []}
    finished = asyncio.Event()

    async def slow(entries: Sequence[Entry]) -> None:
        seen["slow"] += [e.id for e in entries]
        await asyncio.sleep(1.5)
        finished.set()

    async def other(entries: Sequence[Entry]) -> None:
        seen["other"] += [e.id for e in entries]

    quick = settings(config, claim_idle_ms=300, claim_interval_ms=50)
    holder = StreamWorker(redis, stream, GROUP, "slow", slow, quick)
    taker = StreamWorker(redis, stream, GROUP, "other", other, quick)
    stop = asyncio.Event()
    first = asyncio.create_task(holder.run(stop))
    while not seen["slow"]:
        await asyncio.sleep(0.01)
    second = asyncio.create_task(taker.run(stop))
    await asyncio.wait_for(finished.wait(), 10)
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(first, second)
    assert seen == {"slow": [entry_id], "other": []}
    assert await pending(redis, stream) == 0


async def test_a_dead_consumers_entries_are_taken_over_after_the_idle_time(
    config: Config, redis: Any
):
    """Renewal stops with the process: the entry it held is idle again, and taken."""
    stream = f"{config.redis.stream_prefix}:orphan"
    [entry_id] = await add(redis, stream, 1)
    started = asyncio.Event()

    async def hangs(entries: Sequence[Entry]) -> None:
        started.set()
        await asyncio.Event().wait()

    taken: list[str] = []

    async def takes(entries: Sequence[Entry]) -> None:
        taken.extend(e.id for e in entries)

    quick = settings(config, claim_idle_ms=300, claim_interval_ms=50)
    dying = asyncio.create_task(
        StreamWorker(redis, stream, GROUP, "dying", hangs, quick).run(asyncio.Event())
    )
    await asyncio.wait_for(started.wait(), 10)
    dying.cancel()  # as if killed: no ack, and no more renewals
    await asyncio.gather(dying, return_exceptions=True)
    taker = StreamWorker(redis, stream, GROUP, "taker", takes, quick)

    async def done() -> bool:
        return taken == [entry_id] and await pending(redis, stream) == 0

    await run_until(taker, done)
