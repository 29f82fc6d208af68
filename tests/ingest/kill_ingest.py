"""The real ingest actor in a process of its own, for the crash test.

Usage: python -m tests.ingest.kill_ingest MONGO_URL DATABASE REDIS_URL PREFIX UPLOAD
       [KILL_AT [tally]]

With KILL_AT, the process SIGKILLs itself inside the KILL_AT-th chunk, after its rows
are written and before its progress is counted and it is acked: the middle of a chunk.
With ``tally`` it dies instead as the KILL_AT-th chunk's transaction (its new customers
and their addition to the tally) is committed: where, written one after the other, a
crash left one of the two without the other. Without KILL_AT, the process runs until
the upload is done.
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
        monitoring.register(DieAtCommit(int(argv[5])))
    elif len(argv) > 5:
        die_at(persist, "record_progress", int(argv[5]), before=True)
    async with process_crmd(mongo_url, database, redis_url, prefix, "ingest-under-test") as system:

        async def done() -> bool:
            upload = await system.db.uploads.find_one({"_id": ObjectId(upload_id)})
            return bool(upload and upload["status"] == "done")

        actor = system.actors["ingest"]
        assert isinstance(actor, StreamActor)
        await run_until(actor.worker, done)


class DieAtCommit(monitoring.CommandListener):
    """SIGKILL as the ``call``-th commit of a transaction that inserted new customers is
    sent: the chunk's rows and its tally's addition both written, neither committed.
    (Written without a transaction there is no commit to die at: the process is not
    killed, and the test fails on its exit code, whichever of the two is written first.)"""

    def __init__(self, call: int) -> None:
        self.call = call
        self.seen = 0
        self.inserted = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name == "insert" and command.get("insert") == "customers":
            self.inserted = "txnNumber" in command and command.get("autocommit") is False
        elif event.command_name == "commitTransaction" and self.inserted:
            self.inserted = False
            self.seen += 1
            if self.seen == self.call:
                os.kill(os.getpid(), signal.SIGKILL)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
