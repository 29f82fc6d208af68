"""The documents crmd stores, as msgspec Structs: what a read from the store gives the
code that uses it, so that a misspelt field is a type error, not a ``KeyError`` in
production.

Each Struct names its fields exactly as they are stored (``campaignId``, ``createdAt``;
the original Mini-CRM's ``customer_external_id``), with ``_id`` read as ``id``.
Documents are written as they always were; a Struct only reads them (``decode``). A
field added to crmd later has a default, so that a document stored before it still
reads; a field the Struct does not name (``userId``, a field of another era) is
ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar, get_args

import msgspec
from bson import ObjectId

D = TypeVar("D", bound=msgspec.Struct)


def decode(doc: Mapping[str, Any], kind: type[D]) -> D:
    """``doc`` as read from MongoDB, as a ``kind``. BSON's own values (ObjectId, an
    aware datetime) are taken as they are."""
    return msgspec.convert(doc, kind, dec_hook=_bson)


def decode_all(docs: Iterable[Mapping[str, Any]], kind: type[D]) -> list[D]:
    return [decode(doc, kind) for doc in docs]


def projection(kind: type[msgspec.Struct]) -> dict[str, int]:
    """A projection that reads the fields ``kind`` names, and no others."""
    return dict.fromkeys((f.encode_name for f in msgspec.structs.fields(kind)), 1)


def _bson(kind: type, value: Any) -> Any:
    if kind is ObjectId and isinstance(value, ObjectId):
        return value
    raise NotImplementedError(f"no {kind.__name__} from {type(value).__name__}")


# Suppressions (``suppressions``): one per address per tenant.

SuppressionSource = Literal["unsubscribe", "bounce", "failure", "operator", "import"]
"""How an address came to be suppressed: its owner followed an unsubscribe link, a
vendor reported a bounce or a hard failure, or an operator added it (one, or a file)."""
SUPPRESSION_SOURCES: tuple[str, ...] = get_args(SuppressionSource)


class Suppression(msgspec.Struct, frozen=True, kw_only=True):
    id: str = msgspec.field(name="_id")
    """Derived from the tenant and the address (``suppressions.entries.entry_id``)."""
    email: str
    reason: str = ""
    source: SuppressionSource = "operator"
    campaignId: str | None = None
    customerId: str | None = None
    n: int = 0
    createdAt: datetime


# Uploads (``uploads``): one per CSV file received.

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


# Segments (``segments``): a saved rule and its size as last counted.


class SegmentSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What a list of segments to choose from reads (``projection(SegmentSummary)``)."""

    id: ObjectId = msgspec.field(name="_id")
    n: int = 0
    name: str
    audienceSize: int | None = None
    """None while it is being counted."""


class Segment(SegmentSummary, frozen=True, kw_only=True):
    rule: str
    countedAt: datetime | None = None
    """The moment ``audienceSize`` stands for."""
    createdAt: datetime
    updatedAt: datetime | None = None
    """None on segments saved before it was kept: read it as ``createdAt``."""
