"""Receiving an upload: the body parsed (``crmd.ingest.body``) and spooled, then, only if
the whole file passed, the upload job recorded, its rejected rows stored and its chunks
published to the ingest stream, all of them or none."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import msgspec
import structlog
from aiohttp import web
from bson import ObjectId
from redis.asyncio import Redis

from crmd.errors import BadRequest, Conflict, Unavailable, Unprocessable
from crmd.ingest.body import open_body, parse_streaming
from crmd.ingest.errors import FileProblem
from crmd.ingest.finished import announce_done
from crmd.ingest.headers import parse_mapping
from crmd.ingest.parse import Limits
from crmd.ingest.publish import (
    STALE_AFTER,
    Abandoned,
    finish_interrupted,
    heartbeat,
    publish_all,
)
from crmd.ingest.spool import Spool
from crmd.store.documents import Upload, UploadSummary, decode, projection
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_tallied
from crmd.telemetry.logs import describe_error

log = structlog.get_logger(__name__)

ERROR_BATCH = 1000


async def store_rejected(store: TenantStore, upload_id: ObjectId, spool: Spool) -> None:
    """Every rejected row, for errors.csv."""
    rejected = spool.rejected()

    def next_batch() -> list[dict[str, Any]]:
        return [
            {"uploadId": upload_id, **msgspec.structs.asdict(r.error), "values": r.values}
            for r in islice(rejected, ERROR_BATCH)
        ]

    while batch := await asyncio.to_thread(next_batch):
        await store["upload_errors"].insert_many(batch)


class Imports:
    """Receiving uploads: what it needs, handed over once by the composition root. At
    most ``at_once`` files are parsed at a time by this process (each costs a core and
    up to a record's worth of memory); the others wait their turn."""

    def __init__(
        self,
        redis: Redis,
        stream: str,
        limits: Limits,
        spool_dir: str | None,
        at_once: int,
        prefix: str = "crmd",
    ) -> None:
        """``prefix``: the Redis keys' (webhooks, told of an upload with no valid row,
        done at once)."""
        self.redis = redis
        self.prefix = prefix
        self.stream = stream
        self.limits = limits
        self.spool_dir = spool_dir or None
        self.turns = asyncio.Semaphore(at_once)

    async def receive(
        self,
        request: web.Request,
        kind: str | None,
        store: TenantStore,
        form: FormCheck | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """``kind`` None: the form says it (``form`` reads and checks its fields)."""
        async with self.turns:
            status, answered = await receive_upload(
                request, kind, store, self.redis, self.stream, self.limits, self.spool_dir, form
            )
        if answered.get("status") == "done":
            await announce_done(store, self.redis, self.prefix, answered["uploadId"])
        return status, answered


FormCheck = tuple[tuple[str, ...], Callable[[dict[str, str]], str]]
"""The form fields that come before the file, and what checks them and says the kind."""


async def receive_upload(
    request: web.Request,
    kind: str | None,
    store: TenantStore,
    redis: Redis,
    stream: str,
    limits: Limits,
    spool_dir: str | None,
    form: FormCheck | None = None,
) -> tuple[int, dict[str, Any]]:
    """The whole reception; returns the status and the answer (202, or the earlier
    answer again for a repeated Idempotency-Key).

    The job is recorded as ``receiving`` while its rejected rows are stored and its
    chunks published (all of them in one transaction), and becomes ``queued`` after.
    Should this process die in between, the clock finds the job by its stale heartbeat
    and finishes it: failed if nothing was published, queued if everything was."""
    started = time.monotonic()
    key = idempotency_key(request)
    if (
        key is not None
        and kind is not None
        and (earlier := await replay(store, redis, stream, key, kind)) is not None
    ):
        return earlier
    body = await open_body(request, form[0] if form else ())
    if form is not None:
        kind = form[1](body.fields)
    if kind is None:
        raise BadRequest("say whether the file holds customers or orders", code="missing_kind")
    mapping = parse_mapping(body.mapping)
    upload_id = ObjectId()
    accepted = datetime.now(UTC)
    spool = Spool(
        str(upload_id), store.user_id, kind, int(accepted.timestamp() * 1000), spool_dir or None
    )
    try:
        try:
            summary = await parse_streaming(body.data, kind, mapping, limits, spool)
        except FileProblem as problem:
            log.info("upload.refused", kind=kind, code=problem.code, line=problem.line)
            raise
        await body.ensure_nothing_else()
        rows = {
            "received": summary.received,
            "valid": summary.valid,
            "rejected": summary.rejected,
            "persisted": 0,
        }
        recorded = datetime.now(UTC)  # the heartbeat starts now, not when the body began
        doc = {
            "_id": upload_id,
            "n": await store.reserve("uploads", 1),
            "kind": kind,
            "fileName": body.file_name,
            "status": "receiving",
            "rows": rows,
            "errors": [msgspec.structs.asdict(e) for e in summary.errors],
            "chunks": summary.chunks,
            "createdAt": accepted,
            "updatedAt": recorded,
            "heartbeatAt": recorded,
            "finishedAt": None,
            "timings": {"parseSeconds": round(time.monotonic() - started, 3)},
            **({"idempotencyKey": key} if key else {}),
        }
        if await insert_tallied(store, "uploads", [doc]):
            # The same key, a moment earlier, from a retry that overtook this request.
            earlier = await replay(store, redis, stream, key, kind)
            return earlier or (202, answer(str(upload_id), "failed", rows))
        status = await accept(store, redis, stream, upload_id, spool, summary.valid)
    finally:
        await asyncio.to_thread(spool.close)
    log.info(
        "upload.accepted",
        upload_id=str(upload_id),
        kind=kind,
        rows=summary.received,
        valid=summary.valid,
        rejected=summary.rejected,
    )
    return 202, answer(str(upload_id), status, rows)


async def accept(
    store: TenantStore, redis: Redis, stream: str, upload_id: ObjectId, spool: Spool, valid: int
) -> str:
    """Store the rejected rows, publish the valid ones, and say so: the job leaves
    ``receiving`` as ``queued`` (``done`` with no valid row), or as ``failed`` with the
    reason when Redis refused the rows, and then nothing of them was published (and the
    job's Idempotency-Key is freed, so that a retry with it imports the file)."""
    uploads = store["uploads"]
    started = time.monotonic()
    beating = asyncio.create_task(heartbeat(store, upload_id))
    try:
        await store_rejected(store, upload_id, spool)
        if valid:
            await publish_all(redis, stream, str(upload_id), spool.payloads())
    except Abandoned:
        raise Unavailable(
            "this upload took too long to be accepted and was given up: nothing from it was "
            "imported; upload it again"
        ) from None
    except Exception as exc:
        await uploads.update_one(
            {"_id": upload_id, "status": "receiving"},
            {
                "$set": {
                    "status": "failed",
                    "finishedAt": datetime.now(UTC),
                    "reason": f"could not queue: {describe_error(exc)}",
                },
                "$unset": {"idempotencyKey": ""},
            },
        )
        raise
    finally:
        beating.cancel()
        await asyncio.gather(beating, return_exceptions=True)
    status = "queued" if valid else "done"
    now = datetime.now(UTC)
    change = {"status": status, "updatedAt": now, **({} if valid else {"finishedAt": now})}
    # Conditional: once the rows are published, the ingest actor may already have
    # moved the job on (to processing, or even to done).
    await uploads.update_one({"_id": upload_id, "status": "receiving"}, {"$set": change})
    await uploads.update_one(
        {"_id": upload_id}, {"$set": {"timings.queueSeconds": round(time.monotonic() - started, 3)}}
    )
    return status


def answer(upload_id: str, status: str, rows: dict[str, int]) -> dict[str, Any]:
    counts = {k: rows[k] for k in ("received", "valid", "rejected")}
    return {"uploadId": upload_id, "status": status, "rows": counts, "number": counts["valid"]}


_KEY = re.compile(r"[A-Za-z0-9._:-]{1,200}")
"""Matched whole (``fullmatch``): ``$`` would also match before a final line break."""


def idempotency_key(request: web.Request) -> str | None:
    """The request's ``Idempotency-Key``: a retry that carries the same key gets the
    first request's job, whether or not the first answer reached the client."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        raise BadRequest(
            "Idempotency-Key must be 1 to 200 letters, digits or . _ : -",
            details={"field": "Idempotency-Key"},
            code="bad_idempotency_key",
        )
    return raw


async def replay(
    store: TenantStore, redis: Redis, stream: str, key: str | None, kind: str
) -> tuple[int, dict[str, Any]] | None:
    """The answer already given for ``key``, as it stands now; None when the key is
    free. A key names one upload of one kind; 409 while that upload is still being
    received (a receiver that stopped beating is settled first)."""
    uploads = store["uploads"]
    found = await uploads.find_one({"idempotencyKey": key})
    if found is None:
        return None
    earlier = decode(found, Upload)
    if earlier.kind != kind:
        raise Unprocessable(
            f"this Idempotency-Key was used for an upload of {earlier.kind}",
            code="idempotency_key_reused",
            details={"field": "Idempotency-Key", "uploadId": str(earlier.id)},
        )
    if earlier.status == "receiving":
        now = datetime.now(UTC)
        beat = earlier.heartbeatAt or earlier.createdAt
        if beat.replace(tzinfo=UTC) < now - STALE_AFTER:
            await finish_interrupted(uploads, redis, stream, earlier.id, now)
            return await replay(store, redis, stream, key, kind)
        raise Conflict(
            "an upload with this Idempotency-Key is still being received; ask again shortly",
            code="upload_in_progress",
            details={"uploadId": str(earlier.id)},
        )
    return 202, answer(str(earlier.id), earlier.status, msgspec.structs.asdict(earlier.rows))


async def get_upload(store: TenantStore, id_text: str) -> Upload:
    """The user's upload whose id is ``id_text`` (404 when malformed, absent or not
    theirs)."""
    return decode(await store["uploads"].get(id_text, "upload"), Upload)


async def upload_summary(store: TenantStore, upload_id: ObjectId) -> UploadSummary | None:
    """The upload's figures and status as they stand, for a page that follows them."""
    found = await store["uploads"].find_one({"_id": upload_id}, projection=SUMMARY)
    return None if found is None else decode(found, UploadSummary)


SUMMARY = projection(UploadSummary)
