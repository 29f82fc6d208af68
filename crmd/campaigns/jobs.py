"""The dispatch stream's entries: plan a campaign, or send one chunk of its messages."""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

FIELD = b"job"
SEND_CHUNK = 500


class DispatchJob(msgspec.Struct, array_like=True, omit_defaults=True):
    kind: str
    """plan or send"""
    campaign: str
    user: str
    ids: list[str] = []
    """For send: the communication_log ids (our message ids) of this chunk."""


encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(DispatchJob).decode


async def publish(redis: Redis, stream: str, jobs: list[DispatchJob]) -> None:
    if not jobs:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.xadd(stream, {FIELD: encode(job)})
        await pipe.execute()


CHUNK_SECONDS = 20
"""A chunk is sized to take about this long at the vendor's rate: far less than the idle
time after which another process would take the chunk over."""


def chunk_size(rate: float) -> int:
    return max(1, min(SEND_CHUNK, int(rate * CHUNK_SECONDS)))


def send_jobs(campaign: str, user: str, ids: list[str], size: int = SEND_CHUNK
              ) -> list[DispatchJob]:  # fmt: skip
    return [DispatchJob("send", campaign, user, ids[i : i + size])
            for i in range(0, len(ids), size)]  # fmt: skip
