"""The real ingest actor in a process of its own, for the crash test.

Usage: python -m tests.ingest.kill_ingest MONGO_URL DATABASE REDIS_URL PREFIX UPLOAD [KILL_AT]

With KILL_AT, the process SIGKILLs itself inside the KILL_AT-th chunk, after its rows
are written and before its progress is counted and it is acked: the middle of a chunk.
Without it, the process runs until the upload is done.
"""

from __future__ import annotations

import asyncio
import sys

from bson import ObjectId

import crmd.ingest.persist as persist
from crmd.streams.actor import StreamActor
from tests.actor_process import die_at, process_crmd, run_until


async def main(argv: list[str]) -> None:
    mongo_url, database, redis_url, prefix, upload_id = argv[:5]
    if len(argv) > 5:
        die_at(persist, "record_progress", int(argv[5]), before=True)
    async with process_crmd(mongo_url, database, redis_url, prefix, "ingest-under-test") as system:

        async def done() -> bool:
            upload = await system.db.uploads.find_one({"_id": ObjectId(upload_id)})
            return bool(upload and upload["status"] == "done")

        actor = system.actors["ingest"]
        assert isinstance(actor, StreamActor)
        await run_until(actor.worker, done)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
