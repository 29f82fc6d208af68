"""An upload's chunks go onto the ingest stream all together or not at all, and an
upload whose receiver died is finished one way or the other.

The chunks are sent inside one MULTI/EXEC transaction, as they are read from the spool:
Redis holds them until EXEC and drops them if the connection goes first (crmd killed,
the network gone). The same transaction sets a marker, so that whoever finds an upload
left ``receiving`` by a dead process can tell whether its rows were published (the job
goes on) or not (the job failed, and nothing of it was imported).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import structlog
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from crmd.ingest import chunks
from crmd.services.connect import dedicated_connection
from crmd.store.tenant import ScopedCollection, TenantStore

log = structlog.get_logger(__name__)

PUBLISH_BATCH = 100
MARKER_TTL = 7 * 86_400
HEARTBEAT_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=60)
"""A ``receiving`` upload whose receiver has not been heard from for this long is dead."""
INTERRUPTED = (
    "interrupted before it was accepted (crmd stopped or the connection dropped); "
    "nothing from this file was imported: upload it again"
)


class Abandoned(Exception):
    """The upload was given up for dead (its heartbeat stopped) before it was published:
    nothing of it is, or will be, published."""


def marker_key(stream: str, upload_id: str) -> str:
    return f"{stream}:published:{upload_id}"


def fence_key(stream: str, upload_id: str) -> str:
    return f"{stream}:abandoned:{upload_id}"


async def publish_all(redis: Redis, stream: str, upload_id: str, payloads: Iterator[bytes]) -> int:
    """Every payload as one stream entry, in one transaction; returns how many. The
    transaction WATCHes the upload's fence: once the clock has given the upload up, the
    publication fails (Abandoned) rather than import a file the job says it did not."""
    fence = fence_key(stream, upload_id)
    published = 0
    async with dedicated_connection(redis, stream) as connection:
        try:
            await connection.send_command("WATCH", fence)
            await connection.read_response()
            await connection.send_command("GET", fence)
            if await connection.read_response() is not None:
                raise Abandoned(f"upload {upload_id} was given up before it was published")
            await connection.send_command("MULTI")
            await connection.read_response()
            while batch := await asyncio.to_thread(lambda: list(islice(payloads, PUBLISH_BATCH))):
                commands = [("XADD", stream, "*", chunks.FIELD, payload) for payload in batch]
                await connection.send_packed_command(connection.pack_commands(commands))
                for _ in batch:
                    await connection.read_response()  # QUEUED, or an error raised here
                published += len(batch)
            marker = marker_key(stream, upload_id)
            await connection.send_command("SET", marker, published, "EX", MARKER_TTL)
            await connection.read_response()
            await connection.send_command("EXEC")
            results: Any = await connection.read_response()
        except BaseException:
            # Dropping the connection makes Redis discard the transaction: nothing of
            # it was published. (A DISCARD could not be trusted to arrive.)
            await connection.disconnect()
            raise
    if results is None:  # the fence moved under the WATCH
        raise Abandoned(f"upload {upload_id} was given up while it was being published")
    if any(isinstance(r, ResponseError) for r in results):
        raise ResponseError(f"the upload's transaction was refused: {results!r:.200}")
    return published


async def published(redis: Redis, stream: str, upload_id: str) -> bool:
    """Whether the upload's rows were published, settled for good: the fence goes up
    first, so a publication still in flight can no longer succeed after the answer."""
    await redis.set(fence_key(stream, upload_id), 1, ex=MARKER_TTL)
    return bool(await redis.exists(marker_key(stream, upload_id)))


async def heartbeat(store: TenantStore, upload_id: ObjectId) -> None:
    """Keep saying that this upload's receiver is alive, until cancelled; a beat that
    fails (the database busy or restarting) is tried again at the next one."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            await store["uploads"].update_one(
                {"_id": upload_id, "status": "receiving"},
                {"$set": {"heartbeatAt": datetime.now(UTC)}},
            )
        except Exception as exc:
            log.warning("upload.heartbeat_failed", upload_id=str(upload_id), error=str(exc)[:200])


async def finish_interrupted(
    uploads: ScopedCollection, redis: Redis, stream: str, upload_id: ObjectId, now: datetime
) -> bool:
    """Settle one upload whose receiver is dead: queued if its rows were published,
    failed otherwise (its Idempotency-Key freed, so that a retry imports the file).
    True when this call moved it."""
    if await published(redis, stream, str(upload_id)):
        change: dict[str, Any] = {"$set": {"status": "queued", "updatedAt": now}}
    else:
        change = {
            "$set": {
                "status": "failed",
                "reason": INTERRUPTED,
                "finishedAt": now,
                "updatedAt": now,
            },
            "$unset": {"idempotencyKey": ""},
        }
    moved = await uploads.update_one({"_id": upload_id, "status": "receiving"}, change)
    if moved.modified_count:
        log.warning(
            "upload.interrupted",
            upload_id=str(upload_id),
            published=change["$set"]["status"] == "queued",
        )
    return bool(moved.modified_count)


async def recover_interrupted(
    db: AsyncDatabase[dict[str, Any]], redis: Redis, stream: str, now: datetime
) -> int:
    """Finish the uploads whose receiver died: queued when their rows were published,
    failed (with a reason that says nothing was imported) when they were not. Returns
    how many were finished."""
    finished = 0
    stale = {"status": "receiving", "heartbeatAt": {"$lt": now - STALE_AFTER}}
    async for upload in db.uploads.find(stale, projection={"userId": 1}):
        uploads = TenantStore(db, upload["userId"])["uploads"]
        finished += await finish_interrupted(uploads, redis, stream, upload["_id"], now)
    return finished
