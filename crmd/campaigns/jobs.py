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


def send_jobs(campaign: str, user: str, ids: list[str]) -> list[DispatchJob]:
    return [DispatchJob("send", campaign, user, ids[i : i + SEND_CHUNK])
            for i in range(0, len(ids), SEND_CHUNK)]  # fmt: skip
