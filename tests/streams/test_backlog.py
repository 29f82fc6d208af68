"""What a group still has to do: the entries it was never given, and those given and
not acknowledged; never one it acknowledged, however long it stays in the stream."""

from __future__ import annotations

from typing import Any

import pytest

from crmd.config import Config
from crmd.streams import backlog
from crmd.streams.backlog import unacknowledged
from crmd.streams.worker import ensure_group


async def to_do(redis: Any, stream: str) -> list[bytes]:
    return [fields[b"n"] async for _, fields in unacknowledged(redis, stream, "g")]


async def test_a_stream_never_written_has_nothing_to_do(config: Config, redis: Any):
    assert await to_do(redis, f"{config.redis.stream_prefix}:none") == []


async def test_pending_and_undelivered_entries_are_to_do_and_acknowledged_ones_not(
    config: Config, redis: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(backlog, "PAGE", 2)  # several pages
    stream = f"{config.redis.stream_prefix}:backlog"
    for n in range(7):
        await redis.xadd(stream, {"n": str(n)})
    assert await to_do(redis, stream) == [str(n).encode() for n in range(7)]  # no group yet
    await ensure_group(redis, stream, "g")
    reply = await redis.xreadgroup("g", "c", {stream: ">"}, count=4)
    given = [entry_id for entry_id, _ in reply[0][1]]
    await redis.xack(stream, "g", given[0], given[2])
    assert await to_do(redis, stream) == [b"1", b"3", b"4", b"5", b"6"]
    await redis.xack(stream, "g", given[1], given[3])
    assert await to_do(redis, stream) == [b"4", b"5", b"6"]
