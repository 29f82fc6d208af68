"""A user's customers in slices, each with a version that every change to it moves on.

Customers are numbered as they arrive (``n``, ``crmd.store.numbering``); slice ``k``
holds the numbers ``k * SLICE + 1`` to ``(k + 1) * SLICE``. Whatever writes a customer
(the ingest actor, for the rows of an upload and for the order figures an upload of
orders changes) moves the version of the customer's slice on, in Redis, once the write
is done. A count of a rule over one slice, kept with the version it was taken at, is then
known to be right for as long as the version has not moved: an import of new customers
changes the newest slices only, so the counts of all the others stay good.

The version moves after the write: a count taken meanwhile is kept under the old version
and so is already stale. A crash between the two leaves the version unmoved, but the
chunk is then written again (its stream entry was not acknowledged), and it moves the
version then; and no count is trusted past ``crmd.segments.counts.TRUSTED_FOR``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from redis.asyncio import Redis

SLICE = 1000
"""Customers a slice holds: what one count of a changed slice reads (about 50 ms of
SecantusDB's time), and a rule's cache holds one entry per slice."""


def slice_of(n: int) -> int:
    """The slice holding customer number ``n`` (numbers start at 1)."""
    return (max(n, 1) - 1) // SLICE


def numbers_of(k: int) -> tuple[int, int]:
    """The numbers ``[lo, hi)`` slice ``k`` holds."""
    return k * SLICE + 1, (k + 1) * SLICE + 1


def runs(ordered: list[int]) -> Iterator[tuple[int, int]]:
    """The runs of consecutive numbers in ``ordered``, as (first, last)."""
    run: list[int] = []
    for k in ordered:
        if run and k != run[-1] + 1:
            yield run[0], run[-1]
            run = []
        run.append(k)
    if run:
        yield run[0], run[-1]


def slice_keys(prefix: str, user: str) -> tuple[str, str]:
    """(the user's slice versions, the prefix of the user's cached counts): one Redis
    Cluster hash tag per user, so a user's keys live together."""
    tag = f"{{{prefix}:audience:{user}}}"
    return f"{tag}:versions", f"{tag}:counts"


class CustomerVersions:
    """The versions of every user's customer slices."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def changed(self, user: str, numbers: Iterable[int]) -> None:
        """The customers numbered ``numbers`` were written: their slices move on."""
        touched = {slice_of(n) for n in numbers if n}
        if not touched:
            return
        versions, _ = slice_keys(self.prefix, user)
        async with self.redis.pipeline(transaction=False) as pipe:
            for k in sorted(touched):
                pipe.hincrby(versions, str(k), 1)
            await pipe.execute()

    async def read(self, user: str) -> dict[int, int]:
        """Each slice's version (a slice never written since versions were kept: 0)."""
        versions, _ = slice_keys(self.prefix, user)
        stored = await self.redis.hgetall(versions)
        return {int(k): int(v) for k, v in stored.items()}
