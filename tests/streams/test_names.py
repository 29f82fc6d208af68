"""Stream keys carry a Redis Cluster hash tag; the keys of an older crmd are moved."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.crc import key_slot

from crmd.config import Config
from crmd.streams import StreamNames, rename_old_keys
from crmd.streams.worker import dead_letter_stream, ensure_group


def test_a_streams_keys_share_its_hash_slot():
    streams = StreamNames.for_prefix("crmd")
    assert streams.ingest == "{crmd:ingest}"
    for stream in streams.all():
        for key in (dead_letter_stream(stream), f"{stream}:outstanding:abc", f"{stream}:x:y"):
            assert key_slot(key.encode()) == key_slot(stream.encode())


async def test_keys_of_an_older_crmd_are_moved_with_their_groups_and_pending_entries(
    config: Config, redis: Any
):
    prefix = config.redis.stream_prefix
    old = f"{prefix}:dispatch"
    await ensure_group(redis, old, "crmd")
    entry = await redis.xadd(old, {"job": "x"})
    await redis.xreadgroup("crmd", "w1", {old: ">"}, count=1)  # pending in w1's hands
    await redis.xadd(f"{old}:dead", {"job": "y"})
    await redis.set(f"{old}:outstanding:c1", 3)
    new = StreamNames.for_prefix(prefix).dispatch
    await redis.set(f"{new}:outstanding:c2", 1)  # already new: left alone

    assert await rename_old_keys(redis, prefix) == 3
    assert not await redis.exists(old, f"{old}:dead", f"{old}:outstanding:c1")
    assert await redis.xlen(new) == 1 and await redis.xlen(f"{new}:dead") == 1
    assert int(await redis.get(f"{new}:outstanding:c1")) == 3
    [pending] = await redis.xpending_range(new, "crmd", "-", "+", 10)
    assert (pending["message_id"], pending["consumer"]) == (entry, b"w1")
    assert await rename_old_keys(redis, prefix) == 0  # once moved, nothing to do


async def test_processes_starting_together_move_the_old_keys_once(config: Config, redis: Any):
    prefix = config.redis.stream_prefix
    old = f"{prefix}:ingest"
    await redis.xadd(old, {"n": "1"})
    for n in range(300):
        await redis.set(f"{old}:published:u{n}", n)
    moved = await asyncio.gather(*(rename_old_keys(redis, prefix) for _ in range(4)))
    assert sum(moved) == 301  # each key moved by one of them; none of them failed
    new = StreamNames.for_prefix(prefix).ingest
    assert await redis.xlen(new) == 1
    assert int(await redis.get(f"{new}:published:u299")) == 299
    assert not [key async for key in redis.scan_iter(match=f"{old}*")]
