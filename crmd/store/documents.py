"""The documents crmd stores, as msgspec Structs: what a read from the store gives the
code that uses it, so that a misspelt field is a type error, not a ``KeyError`` in
production.

Each Struct names its fields exactly as they are stored (``campaignId``, ``createdAt``;
the original Mini-CRM's ``customer_external_id``), with ``_id`` read as ``id``.
Most documents are written as they always were and a Struct only reads them
(``decode``); a document crmd inserts whole (a campaign) is built as its Struct and
stored through ``encode``, so that the stored shape has one definition. A field added
to crmd later has a default, so that a document stored before it still reads; a field
the Struct does not name (``userId``, a field of another era) is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar, get_args

import msgspec
from bson import ObjectId
from msgspec import UNSET, UnsetType

from crmd.messages import MessageStatus
from crmd.store.codec import Doc, decode, decode_all, encode, field_names, projection
from crmd.store.experiments import AbTest, Variant, Winner
from crmd.store.uploads import (
    Upload,
    UploadError,
    UploadKind,
    UploadRows,
    UploadStatus,
    UploadSummary,
)

__all__ = [
    "AbTest",
    "Doc",
    "Upload",
    "UploadError",
    "UploadKind",
    "UploadRows",
    "UploadStatus",
    "UploadSummary",
    "Variant",
    "Winner",
    "decode",
    "decode_all",
    "encode",
    "field_names",
    "projection",
]  # fmt: skip

# Suppressions (``suppressions``): one per address per tenant.

SuppressionSource = Literal[  # how: an unsubscribe link, a bounce or hard failure, an operator
    "unsubscribe", "bounce", "complaint", "failure", "operator", "import", "erasure"
]  # (one address, or a file), or the customer's erasure (``crmd.suppressions.erased``)
SUPPRESSION_SOURCES: tuple[str, ...] = get_args(SuppressionSource)


class Suppression(msgspec.Struct, frozen=True, kw_only=True):
    id: str = msgspec.field(name="_id")
    """Derived from the tenant and the address, or an erased one's hash (``entries``)."""
    email: str  # "" in an erased customer's entry, which keeps only
    erased: str = ""  # the keyed hash of the address (``crmd.suppressions.erased``)
    reason: str = ""
    source: SuppressionSource = "operator"
    campaignId: str | None = None
    customerId: str | None = None
    n: int = 0
    createdAt: datetime


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


# Campaigns (``campaigns``): what to send to whom, and how far it has gone.


class CampaignState(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign's status alone (``projection(CampaignState)``): what a sender checks
    between batches."""

    id: ObjectId = msgspec.field(name="_id")
    status: str
    """A ``crmd.campaigns.lifecycle.Status`` value."""


class CampaignProgress(CampaignState, frozen=True, kw_only=True):
    """How far planning has gone (``projection(CampaignProgress)``): what the recount,
    the check for a campaign handed over in full and the clock read."""

    createdAt: datetime | None = None
    plannedAt: datetime | None = None
    """None until every recipient has a place."""
    planTop: int | None = None
    """The highest customer number when planning began (None: not begun)."""
    planNext: int = 0
    """The first customer number of the stretch to plan next."""
    planSeq: int = 0
    """The last place given so far."""
    lastSeq: int | None = None
    """The last place given, once planned."""
    chunked: bool = False
    """Its recipients wait in ``send_chunks`` (every campaign planned since chunks)."""
    resent: bool = False
    """Some of its logs were set to be sent again (retry-failed)."""
    abTest: AbTest | None = None
    winner: Winner | None = None
    decideAt: datetime | None = None
    """When an A/B test's winner is to be picked (status ``testing``)."""


class WrittenSummary(msgspec.Struct, frozen=True, kw_only=True):
    """How it went, in words (the console's summary), and who wrote them."""

    summary: str
    source: str
    at: datetime
    stats: dict[str, int] | None = None
    """The figures it told of: once they move, the console offers to summarise again
    (None on summaries written before it was kept)."""


class NewCampaign(CampaignState, frozen=True, kw_only=True):
    """A campaign as it is created: the document ``encode`` inserts."""

    n: int = 0
    name: str
    message: str
    subject: str = ""
    html: str = ""
    intent: str = ""
    rule: str
    segmentId: str | None = None
    vendor: str
    ruleNow: datetime
    """The moment the rule is evaluated at (its relative dates count from here)."""
    audienceSize: int
    """Counted at creation; the recipients planned, once planned."""
    stats: dict[str, int] = {}
    """Recipients by figure (``crmd.campaigns.stats.GROUPS``)."""
    byStatus: dict[str, int] = {}
    """Messages by log status, as last counted (``crmd.store.numbering.BY_STATUS``)."""
    scheduledAt: datetime | None = None
    createdAt: datetime
    updatedAt: datetime | None = None
    sentAt: datetime | None = None
    completedAt: datetime | None = None
    trackClicks: bool = False
    trackOpens: bool = False
    links: list[str] = []
    """The addresses a click link's index names (``crmd.campaigns.links``)."""
    holdout: float = 0.0
    """The percentage of the audience held out (``HELD_OUT``, never sent)."""
    attributionDays: int = 7
    """Orders this many days after a recipient's message count for the campaign."""
    seed: str = ""
    """The key of its recipients' random groups (``crmd.campaigns.groups``)."""
    variants: list[Variant] = []
    abTest: AbTest | None = None


class Campaign(NewCampaign, frozen=True, kw_only=True):
    """A campaign as read back: what planning, sending and the operator added to it."""

    plannedAt: datetime | None = None
    planTop: int | None = None
    planNext: int = 0
    planSeq: int = 0
    lastSeq: int | None = None
    chunked: bool = False
    resent: bool = False
    timeline: dict[str, list[int]] = {}
    """[handed over, delivered, failed, opened, clicked] by second since it started."""
    engagement: dict[str, int] = {}  # what its messages did (crmd.campaigns.engagement)
    linkClicks: dict[str, list[int]] = {}  # [messages that clicked, clicks] by link index
    reason: str | None = None
    """Why it ended in ``error``."""
    summary: WrittenSummary | None = None
    winner: Winner | None = None
    decideAt: datetime | None = None
    """When an A/B test's winner is to be picked (status ``testing``)."""
    results: dict[str, Any] = {}
    """The orders attributed to it, summed by group (``crmd.campaigns.attribution``)."""
    variantStats: dict[str, dict[str, int]] = {}
    """Its logs by variant: recipients, clicked (``crmd.campaigns.stats``)."""
    kind: str = "campaign"  # or flow, message: not listed (``crmd.campaigns.one``)
    transactional: bool = False  # not capped; to the unsubscribed, not the undeliverable


# Message logs (``communication_log``): one per recipient of a campaign, its id the
# message's (``crmd.messages.message_id``).


class LogLine(msgspec.Struct, frozen=True, kw_only=True):
    """A recipient as a campaign's recipient table shows it (``projection(LogLine)``)."""

    id: str = msgspec.field(name="_id")
    seq: int = 0
    """The recipient's place in the campaign (logs of campaigns before places: 0)."""
    customerId: str
    recipient: str = ""
    message: str = ""
    status: MessageStatus
    vendorMessageId: str | None = None
    reason: str | None = None
    updatedAt: datetime


class MessageLog(msgspec.Struct, frozen=True, kw_only=True):
    """A recipient's log as it is first written (``crmd.campaigns.chunks.new_log``).
    The fields only some logs have are UNSET until a write gives them, so that
    ``encode`` stores what was always stored."""

    id: str = msgspec.field(name="_id")
    seq: int
    customerId: str
    recipient: str
    phone: str
    message: str
    """The text as sent (rendered at planning)."""
    values: dict[str, Any] | UnsetType = UNSET
    """The customer's values the subject and the HTML body use."""
    variant: int | UnsetType = UNSET
    """The A/B variant sent (its index), in a campaign with variants."""
    campaignId: str
    vendor: str
    status: MessageStatus
    rank: int
    """``crmd.messages.RANK`` of the highest status reported."""
    round: int
    """The round of retry-failed it was sent in (0: the first)."""
    attempts: int
    vendorMessageId: str | None
    createdAt: datetime
    updatedAt: datetime
    handedAt: datetime | UnsetType = UNSET
    reason: str | UnsetType = UNSET
    times: dict[str, datetime] | UnsetType = UNSET
    """The first time each status was reported."""
    gaveUp: bool | UnsetType = UNSET
    """Failed after retries: the vendor may have taken it (a retry keeps its id)."""


class ReceiptTarget(msgspec.Struct, frozen=True, kw_only=True):
    """What applying a receipt reads of the log it names (``projection(ReceiptTarget)``).
    Read across tenants on purpose: the log found decides the tenant (``userId``)."""

    id: str = msgspec.field(name="_id")
    userId: str
    campaignId: str
    customerId: str = ""
    vendor: str | None = None
    """None on logs written before the vendor was kept."""
    vendorMessageId: str | None = None
    round: int = 0
    rank: int = 0
    times: dict[str, datetime] = {}
    recipient: str = ""


# Customers and orders (``customers``, ``orders``): records imported from CSV files
# (``crmd.ingest``), their ``_id`` derived from the owner and the record's key.
#
# A record's custom attributes (the file's columns crmd does not know) are in ``attrs``;
# a top-level field no Struct names (one written by an older crmd, or by hand) is kept
# in ``extra`` by ``decode_record`` and written back by ``encode_record``, so a record
# read and shown answers with every field it has. The rule evaluator
# (``crmd.segments.evaluate``) still reads the raw documents: a rule may name any
# stored field, and it runs on every customer a campaign plans, where a Struct per
# document would only cost time.

EXTRA = "$extra"
"""``extra``'s name: no stored field can be called this (MongoDB refuses ``$`` first)."""
_BOOKKEEPING = frozenset({"userId"})


class Customer(msgspec.Struct, frozen=True, kw_only=True):
    id: str = msgspec.field(name="_id")
    n: int = 0
    name: str = ""
    email: str = ""
    customer_external_id: str = ""
    """The original Mini-CRM's name for the customer's own id."""
    phone: str = ""
    location: str = ""
    spend: int | float = 0.0
    visits: int = 0
    lastActive: datetime | None = None
    attrs: dict[str, Any] = {}
    """The file's other columns, by their names, typed (``ingest.persist.attr_value``)."""
    orderCount: int = 0
    orderTotal: int | float = 0
    """0 (an int) with no orders, as ``ingest.persist.order_stats`` stores it."""
    lastOrderAt: datetime | None = None
    eventTimes: dict[str, list[datetime]] | UnsetType = UNSET  # newest first, by name
    version: str | UnsetType = msgspec.field(default=UNSET, name="_v")
    """The import's version of the record (upload time and line): a later row wins."""
    uploadId: str | UnsetType = UNSET
    createdAt: datetime | UnsetType = UNSET
    updatedAt: datetime | UnsetType = UNSET
    extra: dict[str, Any] = msgspec.field(default_factory=dict, name=EXTRA)


class Order(msgspec.Struct, frozen=True, kw_only=True):
    id: str = msgspec.field(name="_id")
    n: int = 0
    amount: int | float
    orderDate: datetime
    customer_external_id: str = ""
    customerEmail: str = ""
    order_external_id: str = ""
    items: list[str] = []
    version: str | UnsetType = msgspec.field(default=UNSET, name="_v")
    uploadId: str | UnsetType = UNSET
    createdAt: datetime | UnsetType = UNSET
    updatedAt: datetime | UnsetType = UNSET
    extra: dict[str, Any] = msgspec.field(default_factory=dict, name=EXTRA)


R = TypeVar("R", bound=Customer | Order)


def decode_record(doc: Mapping[str, Any], kind: type[R]) -> R:
    """A stored customer or order: the fields ``kind`` names, and the others in
    ``extra`` (``userId``, the store's own, aside)."""
    struct: type[msgspec.Struct] = kind
    named = {stored for _, stored in field_names(struct)}
    known = {k: v for k, v in doc.items() if k in named}
    extra = {k: v for k, v in doc.items() if k not in named and k not in _BOOKKEEPING}
    return decode({**known, EXTRA: extra}, kind)


def encode_record(record: Customer | Order) -> dict[str, Any]:
    """The record as stored (``userId`` aside): ``decode_record``'s inverse for every
    record crmd wrote (a field missing from a record of another era comes back as its
    default)."""
    doc = encode(record)
    extra = doc.pop(EXTRA)
    return {**doc, **extra}
