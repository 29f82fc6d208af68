"""The real ingest actor in a process of its own, for the crash test.

Usage: python kill_ingest.py MONGO_URL DATABASE REDIS_URL PREFIX UPLOAD_ID [KILL_AT]

With KILL_AT, the process SIGKILLs itself inside the KILL_AT-th chunk, after its rows
are written and before its progress is counted and it is acked: the middle of a chunk. Without it,
the process runs until the upload is done.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import aiohttp
from bson import ObjectId

import crmd.ingest.persist as persist
from crmd.config import load_config
from crmd.ingest.actor import ingest_actor
from crmd.plugins.manager import make_plugin_manager
from crmd.runtime.context import Runtime
from crmd.services.connect import connect_mongo, connect_redis


async def main(argv: list[str]) -> None:
    mongo_url, database, redis_url, prefix, upload_id = argv[:5]
    kill_at = int(argv[5]) if len(argv) > 5 else 0
    config = load_config(None, {}, {
        ("mongodb", "url"): mongo_url, ("mongodb", "database"): database,
        ("redis", "url"): redis_url, ("redis", "stream_prefix"): prefix,
        ("auth", "google_login"): False, ("streams", "block_ms"): 200,
        ("streams", "consumer_name"): "ingest-under-test",
    }, search=False).config  # fmt: skip
    record_progress = persist.record_progress
    calls = 0

    async def maybe_die_then_record(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        await record_progress(*args)

    persist.record_progress = maybe_die_then_record  # type: ignore[assignment]
    mongo = await connect_mongo(config.mongodb.url, 10)
    redis = await connect_redis(config.redis.url, 5, 10)
    async with aiohttp.ClientSession() as http:
        runtime = Runtime(config=config, mongo=mongo, redis=redis, http=http,
                          plugins=make_plugin_manager({}, entry_points=False),
                          jwt_secret="x" * 32)  # fmt: skip
        actor = ingest_actor(runtime)
        stop = asyncio.Event()

        async def watch() -> None:
            while (await runtime.db.uploads.find_one({"_id": ObjectId(upload_id)}))[
                "status"
            ] != "done":
                await asyncio.sleep(0.05)
            stop.set()

        watcher = asyncio.create_task(watch())
        await actor.worker.run(stop)
        await watcher
    await redis.aclose()
    await mongo.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
