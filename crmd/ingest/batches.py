"""Records posted as JSON, taken in as a file's rows are: validated the same way
(``crmd.ingest.records``), then queued on the ingest stream as one upload job whose
``source`` is ``api``, so that the ingest actor stores them (idempotently, the later
record winning) and the job shows their progress (``GET /api/v1/uploads/{id}``).

All of a batch is queued or none of it: a bad item refuses the whole batch (422), and
the chunks are published in one transaction (``crmd.ingest.publish``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from bson import ObjectId
from redis.asyncio import Redis

from crmd.errors import Conflict, PayloadTooLarge, Unavailable, Unprocessable
from crmd.ingest.publish import INTERRUPTED, STALE_AFTER, finish_interrupted
from crmd.ingest.records import refuse, validate_items
from crmd.ingest.rows import CustomerRow, OrderRow
from crmd.ingest.spool import Spool
from crmd.ingest.upload import accept
from crmd.store.documents import Upload, decode
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_tallied

log = structlog.get_logger(__name__)

SOURCE = "api"


class BatchAccepted(msgspec.Struct):
    accepted: int
    """How many records were queued (all of the batch)."""
    uploadId: str
    """The job that stores them."""
    status: str
    """The job's status: ``queued`` (``done`` once every record is stored)."""
    follow: str
    """Where to follow the job: its ``status`` becomes ``done`` when every record is
    stored (``rows.persisted`` counts them)."""


class Batches:
    """Taking in posted records: what it needs, handed over once by the composition root."""

    def __init__(self, redis: Redis, stream: str, chunk_rows: int, max_batch: int) -> None:
        self.redis = redis
        self.stream = stream
        self.chunk_rows = chunk_rows
        self.max_batch = max_batch

    def check(self, body: Any, kind: str) -> list[CustomerRow] | list[OrderRow]:
        """The body (one object or a list of them) as validated rows: 413 over
        ``max_batch`` items, 422 naming each bad item's index and field."""
        items = body if isinstance(body, list) else [body]
        if len(items) > self.max_batch:
            raise PayloadTooLarge(
                f"a batch may hold at most {self.max_batch:,} records, not {len(items):,}",
                details={"field": "$", "max": self.max_batch},
                code="batch_too_large",
            )
        if not items:
            raise Unprocessable("the batch is empty", details={"field": "$"}, code="empty_batch")
        rows, problems = validate_items(items, kind)
        if problems:
            raise refuse(problems, len(items))
        return rows

    async def queue(
        self,
        store: TenantStore,
        kind: str,
        rows: list[CustomerRow] | list[OrderRow],
        upload_id: ObjectId,
    ) -> BatchAccepted:
        """Queue the rows as the upload ``upload_id``. When that upload exists already
        (a retry that took over the Idempotency-Key of a request that died), it is
        answered as it stands instead: its records are queued once."""
        accepted = datetime.now(UTC)
        count = len(rows)
        spool = Spool(str(upload_id), store.user_id, kind, int(accepted.timestamp() * 1000))
        try:
            for start in range(0, count, self.chunk_rows):
                spool.chunk(rows[start : start + self.chunk_rows])
            doc = {
                "_id": upload_id,
                "n": await store.reserve("uploads", 1),
                "kind": kind,
                "source": SOURCE,
                "fileName": f"POST /api/v1/{kind}",
                "status": "receiving",
                "rows": {"received": count, "valid": count, "rejected": 0, "persisted": 0},
                "errors": [],
                "chunks": spool.seq,
                "createdAt": accepted,
                "updatedAt": accepted,
                "heartbeatAt": accepted,
                "finishedAt": None,
                "timings": {},
            }
            if await insert_tallied(store, "uploads", [doc]):
                return await self.resumed(store, upload_id)
            status = await accept(store, self.redis, self.stream, upload_id, spool, count)
        finally:
            await asyncio.to_thread(spool.close)
        log.info("batch.accepted", upload_id=str(upload_id), kind=kind, rows=count)
        return answer(upload_id, count, status)

    async def resumed(self, store: TenantStore, upload_id: ObjectId) -> BatchAccepted:
        """The answer for an upload a request that died began."""
        found = await store["uploads"].find_one({"_id": upload_id})
        if found is None:  # pragma: no cover - inserted a moment ago
            raise Conflict("the batch's job vanished; retry", code="batch_vanished")
        job = decode(found, Upload)
        if job.status == "receiving":
            beat = (job.heartbeatAt or job.createdAt).replace(tzinfo=UTC)
            if beat > datetime.now(UTC) - STALE_AFTER:
                raise Conflict(
                    "this batch is still being queued; retry shortly",
                    code="batch_in_progress",
                    details={"uploadId": str(upload_id)},
                )
            await finish_interrupted(
                store["uploads"], self.redis, self.stream, upload_id, datetime.now(UTC)
            )
            return await self.resumed(store, upload_id)
        if job.status == "failed" and job.reason == INTERRUPTED:
            raise Unavailable(
                "an earlier attempt of this batch was interrupted before its records were "
                "queued: nothing of it was stored; send it again"
            )
        return answer(upload_id, job.rows.valid, job.status)


def answer(upload_id: ObjectId, count: int, status: str) -> BatchAccepted:
    return BatchAccepted(count, str(upload_id), status, f"/api/v1/uploads/{upload_id}")
