"""The dispatch stream's entries: plan a campaign, or send one chunk of its messages."""

from __future__ import annotations

from collections import Counter

import msgspec
from redis.asyncio import Redis

from crmd.streams import GROUP
from crmd.streams.backlog import unacknowledged
from crmd.streams.describe import Payload

FIELD = b"job"
SEND_CHUNK = 500


class DispatchJob(msgspec.Struct, array_like=True, omit_defaults=True):
    kind: str
    """plan, send, or cancel (mark what was not handed over CANCELLED)"""
    campaign: str
    user: str
    ids: list[str] = []
    """For send: the communication_log ids (our message ids) to send again (a retry of
    failed messages, or a campaign planned before plans were kept per chunk)."""
    start: int = 0
    """For plan: the first customer number of the stretch to plan (0: where planning is)."""
    chunk: str = ""
    """For send: the planned chunk (``send_chunks``) whose recipients to hand over."""


encode = msgspec.msgpack.Encoder().encode
decode = msgspec.msgpack.Decoder(DispatchJob).decode


OUTSTANDING_TTL = 7 * 86_400


def outstanding_key(stream: str, campaign: str) -> str:
    return f"{stream}:outstanding:{campaign}"


async def publish(redis: Redis, stream: str, jobs: list[DispatchJob]) -> None:
    """Queue the jobs, and count each campaign's send jobs as outstanding in the same
    transaction."""
    if not jobs:
        return
    async with redis.pipeline(transaction=True) as pipe:
        for job in jobs:
            pipe.xadd(stream, {FIELD: encode(job)})
        for campaign, n in Counter(j.campaign for j in jobs if j.kind == "send").items():
            pipe.incrby(outstanding_key(stream, campaign), n)
            pipe.expire(outstanding_key(stream, campaign), OUTSTANDING_TTL)
        await pipe.execute()


async def finished(redis: Redis, stream: str, job: DispatchJob) -> bool:
    """Count a send job done; true when its campaign may have none left: time for the
    exact check (which counts the unsent messages, seconds on a large campaign, so it is
    not done after every chunk). The count only decides when to check: a chunk counted
    twice after a crash, or a count lost with Redis, makes the check come early, never
    late."""
    left: int = await redis.decr(outstanding_key(stream, job.campaign))
    return left <= 0


async def awaiting_plan(redis: Redis, stream: str) -> set[str]:
    """The campaigns with a plan job still to do: queued, or in a consumer's hands."""
    waiting = set()
    async for _, fields in unacknowledged(redis, stream, GROUP):
        try:
            job = decode(fields[FIELD])
        except (KeyError, msgspec.DecodeError):
            continue  # not ours to judge: the worker dead-letters it
        if job.kind == "plan":
            waiting.add(job.campaign)
    return waiting


CHUNK_SECONDS = 20
"""A chunk is sized to take about this long at the vendor's rate: far less than the idle
time after which another process would take the chunk over."""


def chunk_size(rate: float) -> int:
    return max(1, min(SEND_CHUNK, int(rate * CHUNK_SECONDS)))


def chunk_jobs(campaign: str, user: str, chunks: list[str]) -> list[DispatchJob]:
    return [DispatchJob("send", campaign, user, chunk=chunk) for chunk in chunks]


def send_jobs(
    campaign: str, user: str, ids: list[str], size: int = SEND_CHUNK
) -> list[DispatchJob]:
    return [
        DispatchJob("send", campaign, user, ids[i : i + size]) for i in range(0, len(ids), size)
    ]


def describe(raw: bytes) -> Payload:
    """A job in words, for a dead letter (``crmd.streams.describe``)."""
    job = decode(raw)
    if job.kind == "plan":
        what = f"plan campaign {job.campaign} from customer {job.start}"
    elif job.kind == "send" and job.chunk:
        what = f"send campaign {job.campaign}, planned chunk {job.chunk}"
    elif job.kind == "send":
        what = f"send campaign {job.campaign}, {len(job.ids)} messages"
    else:
        what = f"{job.kind} campaign {job.campaign}"
    return Payload("dispatch job", what, job.user)
