"""Where a user's counts of rules are kept in Redis, shared by every process: a hash per
rule of its slices' entries (``crmd.segments.counts.Entry``, by slice number) and, in a
key beside it, its count of the older slices at once (``Whole``), if it has one."""

from __future__ import annotations

from redis.asyncio import Redis

from crmd.segments.counts import ENCODE, ENTRY, WHOLE_ENTRY, Entry, Job, Whole
from crmd.segments.slices import slice_keys

KEPT_FOR = 2 * 86400
"""A rule's entries are dropped from Redis after two days without a count."""


async def read(redis: Redis, prefix: str, user: str, jobs: list[Job], top: int) -> None:
    """Each job's kept entries and whole, with the slices' versions now and the highest
    customer number ``top`` (read by the caller)."""
    versions_key, counts = slice_keys(prefix, user)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(versions_key)
        for job in jobs:
            pipe.hgetall(f"{counts}:{job.rule.key}")
            pipe.get(f"{counts}:{job.rule.key}:whole")
        stored = await pipe.execute()
    versions = {int(k): int(v) for k, v in stored[0].items()}
    for i, job in enumerate(jobs):
        entries, whole = stored[1 + 2 * i], stored[2 + 2 * i]
        job.versions, job.top = versions, top
        job.entries = {int(k): ENTRY.decode(v) for k, v in entries.items()}
        job.whole = WHOLE_ENTRY.decode(whole) if whole is not None else None


async def keep(
    redis: Redis,
    prefix: str,
    user: str,
    made: dict[Job, dict[int, Entry]],
    wholes: dict[Job, Whole] | None = None,
) -> None:
    """Store jobs' new entries, and their counts of the older slices at once."""
    _, counts = slice_keys(prefix, user)
    async with redis.pipeline(transaction=False) as pipe:
        for job, entries in made.items():
            if entries:
                key = f"{counts}:{job.rule.key}"
                pipe.hset(key, mapping={str(k): ENCODE.encode(e) for k, e in entries.items()})
                pipe.expire(key, KEPT_FOR)
        for job, whole in (wholes or {}).items():
            pipe.set(f"{counts}:{job.rule.key}:whole", ENCODE.encode(whole), ex=KEPT_FOR)
        await pipe.execute()
