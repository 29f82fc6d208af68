"""An upload as stored (``uploads``): one per CSV file received."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec
from bson import ObjectId

UploadKind = Literal["customers", "orders"]
UploadStatus = Literal["receiving", "queued", "processing", "done", "failed"]


class UploadRows(msgspec.Struct, frozen=True, kw_only=True):
    received: int
    valid: int
    rejected: int
    persisted: int = 0


class UploadError(msgspec.Struct, frozen=True, kw_only=True):
    """One of the first rejected rows (every one is in ``upload_errors``)."""

    line: int
    column: str
    code: str
    message: str


class UploadSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What lists and live figures read of an upload (``projection(UploadSummary)``)."""

    id: ObjectId = msgspec.field(name="_id")
    n: int = 0
    kind: UploadKind
    fileName: str
    status: UploadStatus
    rows: UploadRows
    createdAt: datetime


class Upload(UploadSummary, frozen=True, kw_only=True):
    errors: list[UploadError] = []
    chunks: int = 0
    updatedAt: datetime | None = None
    heartbeatAt: datetime | None = None
    finishedAt: datetime | None = None
    timings: dict[str, float] = {}
    reason: str = ""
    """Why it failed."""
    idempotencyKey: str | None = None
