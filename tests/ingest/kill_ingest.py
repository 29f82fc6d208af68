"""The real ingest actor in a process of its own, for the crash test.

Usage: python -m tests.ingest.kill_ingest MONGO_URL DATABASE REDIS_URL PREFIX UPLOAD
       [KILL_AT [tally]]

With KILL_AT, the process SIGKILLs itself inside the KILL_AT-th chunk, after its rows
are written and before its progress is counted and it is acked: the middle of a chunk.
With ``tally`` it dies instead as the KILL_AT-th chunk's new customers are sent, in the
transaction that has just added them to the tally: the moment between the rows and
their tally, where a crash used to leave the rows stored and the tally short. Without
KILL_AT, the process runs until the upload is done.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from bson import ObjectId
from pymongo import monitoring

import crmd.ingest.persist as persist
from crmd.streams.actor import StreamActor
from tests.actor_process import die_at, process_crmd, run_until


async def main(argv: list[str]) -> None:
    mongo_url, database, redis_url, prefix, upload_id = argv[:5]
    if len(argv) > 6 and argv[6] == "tally":
        monitoring.register(DieAtInsert(int(argv[5])))
    elif len(argv) > 5:
        die_at(persist, "record_progress", int(argv[5]), before=True)
    async with process_crmd(mongo_url, database, redis_url, prefix, "ingest-under-test") as system:

        async def done() -> bool:
            upload = await system.db.uploads.find_one({"_id": ObjectId(upload_id)})
            return bool(upload and upload["status"] == "done")

        actor = system.actors["ingest"]
        assert isinstance(actor, StreamActor)
        await run_until(actor.worker, done)


class DieAtInsert(monitoring.CommandListener):
    """SIGKILL as the ``call``-th insert of new customers, in the transaction that has
    added them to the tally, is sent (the tally's update sent before it, both open)."""

    def __init__(self, call: int) -> None:
        self.call = call
        self.seen = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name != "insert" or command.get("insert") != "customers":
            return
        self.seen += 1
        if self.seen == self.call:
            os.kill(os.getpid(), signal.SIGKILL)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
