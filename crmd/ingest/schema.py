"""Uploads and records on the wire: what the upload and list routes answer.

Shared by the routes and the typed client (``crmd.client``), which imports it
without a database or Redis driver: keep it to msgspec and the other schema modules.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from crmd.http.describe import Moment
from crmd.ingest.errors import RowError

UploadStatus = Literal["receiving", "queued", "processing", "done", "failed"]


class Rows(msgspec.Struct):
    received: int
    valid: int
    rejected: int


class StoredRows(Rows):
    persisted: int = 0
    """Valid rows stored so far."""


class UploadAccepted(msgspec.Struct):
    uploadId: str
    status: UploadStatus
    rows: Rows
    number: int
    """How many rows will be imported (the valid ones)."""


class Upload(msgspec.Struct):
    id: str
    uploadId: str
    kind: Literal["customers", "orders"]
    fileName: str
    status: UploadStatus
    rows: StoredRows
    errors: list[RowError]
    """The first rejected rows (all of them: ``errors.csv``)."""
    createdAt: Moment
    finishedAt: Moment | None
    timings: dict[str, float]
    reason: str | UnsetType = UNSET


class UploadList(msgspec.Struct):
    items: list[Upload]
    total: int


class RecordList(msgspec.Struct):
    items: list[dict[str, Any]]
    """The records as imported, each with its ``id``."""
    total: int | None
    """How many records there are (with a rule: match it); null while a rule's matches
    are still being counted (a later page, or ``total=exact``, asks again)."""
    cursor: str | None
    """Pass it back as ``cursor`` for the next page; null on the last."""
