"""crmd's HTTP app in a process of its own that dies while it accepts an upload, for the
crash test.

Usage: python -m tests.ingest.kill_upload MONGO_URL DATABASE REDIS_URL PREFIX PORT WHEN

WHEN is ``publishing`` (SIGKILL half way through sending the rows to Redis, before the
transaction is committed) or ``published`` (SIGKILL right after the commit, before the
job is marked queued and the client hears 202). Chunks are 10 rows, so that a file of a
few thousand rows takes several round trips to publish.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

from aiohttp import web

import crmd.ingest.upload as upload
from tests.actor_process import process_crmd


def die_while_publishing(original: Any, when: str) -> Any:
    async def publish_all(redis: Any, stream: str, upload_id: str, payloads: Iterator[bytes]):
        def dying() -> Iterator[bytes]:
            for n, payload in enumerate(payloads):
                if when == "publishing" and n == 150:  # the first 100 are with Redis
                    os.kill(os.getpid(), signal.SIGKILL)
                yield payload

        published = await original(redis, stream, upload_id, dying())
        if when == "published":
            os.kill(os.getpid(), signal.SIGKILL)
        return published

    return publish_all


async def main(argv: list[str]) -> None:
    mongo_url, database, redis_url, prefix, port, when = argv
    upload.publish_all = die_while_publishing(upload.publish_all, when)
    async with process_crmd(
        mongo_url,
        database,
        redis_url,
        prefix,
        "uploads",
        ingest__chunk_rows=10,
        auth__dev_login=True,
    ) as system:
        runner = web.AppRunner(system.app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(port)).start()
        print("listening", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
