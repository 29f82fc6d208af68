"""The dispatch or receipts actor in a process of its own, for the crash tests.

Usage: python crash_actor.py KIND MONGO_URL DATABASE REDIS_URL PREFIX CAMPAIGN [KILL_AT]

dispatch: sends through a recording vendor that writes every message it is handed to the
``handed`` collection (no deduplication: a second hand-over would show); with KILL_AT the
process SIGKILLs itself right after recording its KILL_AT-th vendor batch, before the
chunk is acked. Runs until the campaign is ``sent``.

receipts: with KILL_AT the process SIGKILLs itself after writing a batch's statuses and
before its stats and ack. Runs until the receipts stream is drained.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from bson import ObjectId

import crmd.campaigns.dispatch as dispatch
import crmd.receipts.apply as apply
from crmd.campaigns.actor import dispatch_actor
from crmd.campaigns.vendors import Vendors
from crmd.config import load_config
from crmd.plugins.manager import make_plugin_manager
from crmd.plugins.vendor import Accepted, CheckResult, OutgoingMessage, ReceiptEvent
from crmd.receipts.actor import receipts_actor
from crmd.runtime.context import Runtime
from crmd.services.connect import connect_mongo, connect_redis


class RecordingVendor:
    name = "dummy_vendor"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def rate_limit(self) -> float:
        return float(os.environ.get("VENDOR_RATE", "20"))

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Accepted]:
        by = os.environ.get("CONSUMER", "")
        await self.runtime.db.handed.insert_many(
            [{"messageId": m.message_id, "by": by} for m in messages]
        )
        return [Accepted(m.message_id, f"rv_{uuid.uuid4().hex}") for m in messages]

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> None: ...

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> list[ReceiptEvent]:
        return []

    async def check(self) -> CheckResult:
        return CheckResult(True)

    async def close(self) -> None: ...


def die_after(module: Any, name: str, kill_at: int, before: bool = False) -> None:
    original = getattr(module, name)
    calls = 0

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if before and calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        result = await original(*args, **kwargs)
        if not before and calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(module, name, wrapper)


async def main(argv: list[str]) -> None:
    kind, mongo_url, database, redis_url, prefix, campaign = argv[:6]
    kill_at = int(argv[6]) if len(argv) > 6 else 0
    config = load_config(None, {}, {
        ("mongodb", "url"): mongo_url, ("mongodb", "database"): database,
        ("redis", "url"): redis_url, ("redis", "stream_prefix"): prefix,
        ("auth", "google_login"): False, ("streams", "block_ms"): 200,
        ("streams", "consumer_name"): os.environ.get("CONSUMER") or f"{kind}-under-test",
    }, search=False).config  # fmt: skip
    mongo = await connect_mongo(config.mongodb.url, 10)
    redis = await connect_redis(config.redis.url, 5, 10)
    async with aiohttp.ClientSession() as http:
        runtime = Runtime(config=config, mongo=mongo, redis=redis, http=http,
                          plugins=make_plugin_manager({}, entry_points=False),
                          jwt_secret="x" * 32)  # fmt: skip
        runtime.vendors = Vendors([RecordingVendor(runtime)])
        if kind == "dispatch":
            if kill_at:
                die_after(dispatch, "_record", kill_at)
            actor = dispatch_actor(runtime)
        else:
            if kill_at:
                die_after(apply.stats, "refresh", kill_at, before=True)
            actor = receipts_actor(runtime)
        stop = asyncio.Event()

        async def finished() -> bool:
            if kind == "dispatch":
                doc = await runtime.db.campaigns.find_one({"_id": ObjectId(campaign)})
                return bool(doc and doc["status"] in ("sent", "completed"))
            stream = runtime.streams.receipts
            [group] = await redis.xinfo_groups(stream)
            newest = await redis.xrevrange(stream, count=1)
            return group["pending"] == 0 and (
                not newest or group["last-delivered-id"] == newest[0][0]
            )

        async def watch() -> None:
            while not await finished():
                await asyncio.sleep(0.1)
            stop.set()

        watcher = asyncio.create_task(watch())
        await actor.worker.run(stop)
        await watcher
    await redis.aclose()
    await mongo.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
