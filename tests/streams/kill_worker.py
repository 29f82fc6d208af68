"""A stream worker in a process of its own, for the crash test.

Usage: python kill_worker.py MONGO_URL DATABASE REDIS_URL STREAM CONSUMER EXPECTED [KILL_AFTER]

Its handler stores one document per entry (``_id`` = the entry's ``n`` field) and counts
every application in ``applications``. With KILL_AFTER, the process SIGKILLs itself
right after the handler has committed that many batches: the last one is committed in
MongoDB and not yet acknowledged in Redis. It stops by itself once EXPECTED documents
exist.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from pymongo import AsyncMongoClient, UpdateOne
from redis.asyncio import Redis

from crmd.config import StreamsConfig
from crmd.streams.worker import Entry, StreamWorker


async def main(argv: list[str]) -> None:
    mongo_url, database, redis_url, stream, consumer, expected = argv[:6]
    kill_after = int(argv[6]) if len(argv) > 6 else 0
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    db = mongo[database]
    redis = Redis.from_url(redis_url, socket_timeout=5)
    stop = asyncio.Event()
    batches = 0

    async def handler(entries: Sequence[Entry]) -> None:
        nonlocal batches
        ops = [
            UpdateOne({"_id": int(e.fields[b"n"])}, {"$set": {"entry": e.id}}, upsert=True)
            for e in entries
        ]
        await db.items.bulk_write(ops, ordered=False)
        await db.applications.insert_many([{"n": int(e.fields[b"n"])} for e in entries])
        batches += 1
        if batches == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if await db.items.count_documents({}) >= int(expected):
            stop.set()

    settings = StreamsConfig(batch_size=10, block_ms=200, claim_idle_ms=60_000)
    worker = StreamWorker(redis, stream, "crmd", consumer, handler, settings)
    await worker.run(stop)
    await redis.aclose()
    await mongo.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
