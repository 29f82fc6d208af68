"""Receiving an upload: the request body streamed into the parser's thread, the parsed
file spooled, then, only if the whole file passed, the upload job recorded and its chunks
published to the ingest stream."""

from __future__ import annotations

import asyncio
import queue
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import msgspec
import structlog
from aiohttp import BodyPartReader, MultipartReader, web
from bson import ObjectId
from redis.asyncio import Redis

from crmd.errors import BadRequest, Conflict, UnsupportedMediaType
from crmd.ingest.errors import FileProblem
from crmd.ingest.headers import parse_mapping
from crmd.ingest.parse import Limits, Summary, parse_upload
from crmd.ingest.publish import heartbeat, publish_all
from crmd.ingest.spool import Spool
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new
from crmd.telemetry.logs import describe_error

log = structlog.get_logger(__name__)

READ_SIZE = 256 * 1024
QUEUE_DEPTH = 16
ERROR_BATCH = 1000
MAX_FORM_FIELD = 64 * 1024
CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"})
_END = object()


class UploadBody:
    """The file's bytes, whichever way they came, and what came with them."""

    def __init__(
        self,
        file_name: str,
        mapping: str | None,
        data: AsyncIterator[bytes],
        rest: MultipartReader | None = None,
    ) -> None:
        self.file_name = file_name
        self.mapping = mapping
        self.data = data
        self.rest = rest

    async def ensure_nothing_else(self) -> None:
        """After the file: a multipart body may hold nothing more, and must end with its
        closing boundary (without it, the file may have been cut short)."""
        if self.rest is None:
            return
        try:
            following = await self.rest.next()
        except ValueError:  # aiohttp: "Reading after EOF"
            raise broken_form() from None
        if following is not None:
            raise BadRequest(
                "the form may hold one 'file' part (after an optional "
                "'mapping' field) and nothing else",
                code="unexpected_part",
            )


async def open_body(request: web.Request) -> UploadBody:
    """``multipart/form-data`` with one ``file`` part, or a raw CSV body."""
    mapping = request.query.get("mapping")
    if request.content_type == "multipart/form-data":
        form = await request.multipart()
        while True:
            try:
                part = await form.next()
            except ValueError:
                raise broken_form() from None
            if part is None:
                raise BadRequest("the form has no 'file' part", code="missing_file")
            if isinstance(part, MultipartReader):
                raise BadRequest("nested multipart bodies are not accepted", code="unexpected_part")
            if part.name == "mapping" and part.filename is None:
                mapping = (await _read_field(part)).decode("utf-8", "replace")
                continue
            if part.name != "file":
                raise BadRequest(
                    f"unexpected form part {part.name!r}: send 'file' (and "
                    "optionally 'mapping' before it)",
                    code="unexpected_part",
                )
            return UploadBody(part.filename or "upload.csv", mapping, _part_chunks(part), form)
    if request.content_type in CSV_TYPES:
        name = request.query.get("filename", "upload.csv")[:255]
        return UploadBody(name, mapping, request.content.iter_chunked(READ_SIZE))
    raise UnsupportedMediaType(
        f"send multipart/form-data with a 'file' part, or a text/csv body "
        f"(got {request.content_type or 'no content type'})"
    )


async def _read_field(part: BodyPartReader) -> bytes:
    data = b""
    while chunk := await part.read_chunk(8192):
        data += chunk
        if len(data) > MAX_FORM_FIELD:
            raise BadRequest(f"form field {part.name!r} is too long", code="field_too_long")
    return data


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    try:
        while chunk := await part.read_chunk(READ_SIZE):
            yield chunk
    except ValueError:
        raise broken_form() from None


def broken_form() -> BadRequest:
    return BadRequest(
        "the multipart body ended before its closing boundary: the file may be cut short",
        code="bad_multipart",
    )


async def parse_streaming(
    data: AsyncIterator[bytes], kind: str, mapping: dict[str, str], limits: Limits, spool: Spool
) -> Summary:
    """Feed the body, as it arrives, to the parser running in a worker thread: the event
    loop only moves bytes, and a bounded queue keeps memory flat."""
    feed: queue.Queue[object] = queue.Queue(maxsize=QUEUE_DEPTH)

    def pieces() -> Iterator[bytes]:
        while (item := feed.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    loop = asyncio.get_running_loop()
    parsing: asyncio.Future[Summary] = loop.run_in_executor(
        None, parse_upload, pieces(), kind, mapping, limits, spool
    )
    try:
        async for piece in data:
            if not await _put(feed, piece, parsing):
                break  # the parser stopped early: it has the answer
        else:
            await _put(feed, _END, parsing)
    except BaseException as exc:
        await _put(feed, exc if isinstance(exc, Exception) else ConnectionError(), parsing)
        await asyncio.gather(parsing, return_exceptions=True)
        raise
    return await parsing


async def _put(feed: queue.Queue[object], item: object, parsing: asyncio.Future[Any]) -> bool:
    """Queue ``item`` without blocking the loop; False when the parser has finished."""
    while True:
        if parsing.done():
            return False
        try:
            feed.put_nowait(item)
            return True
        except queue.Full:
            await asyncio.sleep(0.002)


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
    """Receiving uploads: what it needs, handed over once by the composition root."""

    def __init__(self, redis: Redis, stream: str, limits: Limits, spool_dir: str | None) -> None:
        self.redis = redis
        self.stream = stream
        self.limits = limits
        self.spool_dir = spool_dir or None

    async def receive(
        self, request: web.Request, kind: str, store: TenantStore
    ) -> tuple[int, dict[str, Any]]:
        return await receive_upload(
            request, kind, store, self.redis, self.stream, self.limits, self.spool_dir
        )


async def receive_upload(
    request: web.Request,
    kind: str,
    store: TenantStore,
    redis: Redis,
    stream: str,
    limits: Limits,
    spool_dir: str | None,
) -> tuple[int, dict[str, Any]]:
    """The whole reception; returns the status and the answer (202, or the earlier
    answer again for a repeated Idempotency-Key).

    The job is recorded as ``receiving`` while its rejected rows are stored and its
    chunks published (all of them in one transaction), and becomes ``queued`` after.
    Should this process die in between, the clock finds the job by its stale heartbeat
    and finishes it: failed if nothing was published, queued if everything was."""
    started = time.monotonic()
    key = idempotency_key(request)
    if key is not None and (earlier := await replay(store, key)) is not None:
        return earlier
    body = await open_body(request)
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
        doc = {
            "_id": upload_id,
            "kind": kind,
            "fileName": body.file_name,
            "status": "receiving",
            "rows": rows,
            "errors": [msgspec.structs.asdict(e) for e in summary.errors],
            "chunks": summary.chunks,
            "createdAt": accepted,
            "updatedAt": accepted,
            "heartbeatAt": accepted,
            "finishedAt": None,
            "timings": {"parseSeconds": round(time.monotonic() - started, 3)},
            **({"idempotencyKey": key} if key else {}),
        }
        if await insert_new(store["uploads"].insert_many([doc])):
            # The same key, a moment earlier, from a retry that overtook this request.
            return await replay(store, key) or (202, answer(str(upload_id), "failed", rows))
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
    reason when Redis refused the rows, and then nothing of them was published."""
    uploads = store["uploads"]
    started = time.monotonic()
    beating = asyncio.create_task(heartbeat(store, upload_id))
    try:
        await store_rejected(store, upload_id, spool)
        if valid:
            await publish_all(redis, stream, str(upload_id), spool.payloads())
    except Exception as exc:
        await uploads.update_one(
            {"_id": upload_id, "status": "receiving"},
            {
                "$set": {
                    "status": "failed",
                    "finishedAt": datetime.now(UTC),
                    "reason": f"could not queue: {describe_error(exc)}",
                }
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


_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")


def idempotency_key(request: web.Request) -> str | None:
    """The request's ``Idempotency-Key``: a retry that carries the same key gets the
    first request's job, whether or not the first answer reached the client."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    if not _KEY.match(raw):
        raise BadRequest(
            "Idempotency-Key must be 1 to 200 letters, digits or . _ : -",
            details={"field": "Idempotency-Key"},
            code="bad_idempotency_key",
        )
    return raw


async def replay(store: TenantStore, key: str | None) -> tuple[int, dict[str, Any]] | None:
    """The answer already given for ``key``, as it stands now; 409 while the first
    request with it is still being received."""
    earlier = await store["uploads"].find_one({"idempotencyKey": key})
    if earlier is None:
        return None
    if earlier["status"] == "receiving":
        raise Conflict(
            "an upload with this Idempotency-Key is still being received; ask again shortly",
            code="upload_in_progress",
            details={"uploadId": str(earlier["_id"])},
        )
    return 202, answer(str(earlier["_id"]), earlier["status"], earlier["rows"])
