"""The dispatch or receipts actor in a process of its own, for the crash tests.

Usage: python -m tests.campaigns.crash_actor KIND MONGO_URL DATABASE REDIS_URL PREFIX CAMPAIGN
       [KILL_AT]

dispatch: sends through a recording vendor that writes every message it is handed to the
``handed`` collection (no deduplication: a second hand-over would show); with KILL_AT the
process SIGKILLs itself right after recording its KILL_AT-th vendor batch, before the
chunk is acked. Runs until the campaign is ``sent``.

receipts: with KILL_AT the process SIGKILLs itself before the KILL_AT-th stats recount,
that is after batches were written and acked but before the campaigns they marked were
recounted. Runs until the stream is drained and every marked campaign recounted.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient

import crmd.campaigns.dispatch as dispatch
import crmd.receipts.apply as apply
from crmd import hookimpl
from crmd.plugins.context import PluginContext
from crmd.plugins.vendor import Accepted, CheckResult, OutgoingMessage, ReceiptEvent
from crmd.receipts.actor import recount_key
from crmd.streams.actor import StreamActor
from tests.actor_process import die_at, process_crmd, run_until


class RecordingVendor:
    """Hands nothing to anyone: records in the test's database what it was handed, by
    which process."""

    name = "dummy_vendor"

    def __init__(self, mongo_url: str, database: str) -> None:
        self.mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
        self.db = self.mongo[database]

    def rate_limit(self) -> float:
        return float(os.environ.get("VENDOR_RATE", "20"))

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[Accepted]:
        by = os.environ.get("CONSUMER", "")
        await self.db.handed.insert_many([{"messageId": m.message_id, "by": by} for m in messages])
        return [Accepted(m.message_id, f"rv_{uuid.uuid4().hex}") for m in messages]

    def verify_receipt(self, headers: Mapping[str, str], body: bytes) -> None: ...

    def parse_receipts(self, headers: Mapping[str, str], body: bytes) -> list[ReceiptEvent]:
        return []

    async def check(self) -> CheckResult:
        return CheckResult(True)

    async def close(self) -> None:
        await self.mongo.close()


class Recorder:
    """The plugin that offers the recording vendor."""

    def __init__(self, mongo_url: str, database: str) -> None:
        self.args = (mongo_url, database)

    @hookimpl
    def crmd_vendors(self, context: PluginContext) -> list[RecordingVendor]:
        return [RecordingVendor(*self.args)]


async def main(argv: list[str]) -> None:
    kind, mongo_url, database, redis_url, prefix, campaign = argv[:6]
    kill_at = int(argv[6]) if len(argv) > 6 else 0
    consumer = os.environ.get("CONSUMER") or f"{kind}-under-test"
    recorder = Recorder(mongo_url, database)
    async with process_crmd(
        mongo_url, database, redis_url, prefix, consumer, plugins={"recorder": recorder}
    ) as system:
        if kind == "dispatch":
            if kill_at:
                die_at(dispatch, "_record", kill_at)
        elif kill_at:
            die_at(apply.stats, "refresh", kill_at, before=True)
        actor = system.actors[kind]
        assert isinstance(actor, StreamActor)

        async def done() -> bool:
            if kind == "dispatch":
                doc = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
                return bool(doc and doc["status"] in ("sent", "completed"))
            stream = system.streams.receipts
            [group] = await system.redis.xinfo_groups(stream)
            newest = await system.redis.xrevrange(stream, count=1)
            caught_up = not newest or group["last-delivered-id"] == newest[0][0]
            recounted = not await system.redis.hlen(recount_key(stream))
            return bool(group["pending"] == 0 and caught_up and recounted)

        await run_until(actor.worker, done)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
