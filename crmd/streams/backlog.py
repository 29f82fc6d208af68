"""What a consumer group still has to do on a stream: the entries not yet delivered to
it, and those delivered but not acknowledged (in a consumer's hands, or left by a dead
one to be taken over). Whoever must tell a lost job from one that only waits reads this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from crmd.streams import text_of
from crmd.streams.worker import StreamId, format_id, parse_id

PAGE = 1000


async def unacknowledged(
    redis: Redis, stream: str, group: str
) -> AsyncIterator[tuple[str, dict[bytes, bytes]]]:
    """Each entry ``group`` has not acknowledged, as (id, fields), oldest first.

    An entry acknowledged while this reads may still be given (never one that is due
    and left out): the group's position is read first, and every entry delivered after
    that has a later id, so it is read as undelivered."""
    last, pending = await _position(redis, stream, group)
    start = min(pending, key=parse_id) if pending else f"({format_id(last)}"
    while True:
        page: Any = await redis.xrange(stream, min=start, max="+", count=PAGE)
        for raw_id, fields in page:
            entry_id = text_of(raw_id)
            if parse_id(entry_id) > last or entry_id in pending:
                yield entry_id, fields
        if len(page) < PAGE:
            return
        start = f"({text_of(page[-1][0])}"


async def _position(redis: Redis, stream: str, group: str) -> tuple[StreamId, set[str]]:
    """The group's last-delivered id and the ids it holds pending. No group yet: nothing
    delivered, so every entry is to do."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream: nothing was ever queued
        return (0, 0), set()
    info = next((g for g in groups if text_of(g["name"]) == group), None)
    if info is None:
        return (0, 0), set()
    # Those pending now are all at or before the last-delivered id read above; any
    # delivered since come after it, and are read as undelivered.
    held = int(info["pending"])
    detail = await redis.xpending_range(stream, group, min="-", max="+", count=held) if held else []
    return parse_id(info["last-delivered-id"]), {text_of(d["message_id"]) for d in detail}
