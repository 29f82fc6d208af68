"""The audit log's wire Structs: its entries, a page of them, and the filters a list
takes (``GET /api/v1/audit``, ``/audit.csv`` and the console's page alike)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from crmd.http.describe import Moment
from crmd.http.pages import DEFAULT_LIMIT, Limit

Outcome = Literal["done", "refused"]
OUTCOMES: tuple[Outcome, ...] = ("done", "refused")
ACTION_PATTERN = r"^[a-z][a-z_]*(\.[a-z_]*)?$"
"""``campaign.sent``, or a prefix ending in a dot (``campaign.``) for every action on
campaigns."""
MAX_TEXT = 320


class AuditQuery(msgspec.Struct, forbid_unknown_fields=True):
    """The filters, each optional, all of them applied together."""

    action: Annotated[str, msgspec.Meta(max_length=64, pattern=ACTION_PATTERN)] | None = None
    """An action (``campaign.sent``), or every action with a prefix (``campaign.``)."""
    who: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)] | None = None
    """A person's user id or e-mail address, or a key's id."""
    objectId: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT)] | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    """Entries at or after this ISO 8601 time (UTC when it names no offset)."""
    until: datetime | None = None
    """Entries before this ISO 8601 time."""
    limit: Limit = DEFAULT_LIMIT
    cursor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    """The ``cursor`` of the page before, for the next (older) one."""


class AuditBy(msgspec.Struct, omit_defaults=True):
    """A person (``userId``, ``email``) or an API key (``keyId``, ``keyName``)."""

    userId: str | None = None
    email: str | None = None
    keyId: str | None = None
    keyName: str | None = None


class AuditEntry(msgspec.Struct):
    id: str
    at: Moment
    action: str
    outcome: Outcome
    by: AuditBy
    from_: str = msgspec.field(name="from", default="")
    """The caller's network address."""
    objectId: str = ""
    """The id of what the action was on (a campaign's, an upload's, an address...)."""
    fields: list[str] = msgspec.field(default_factory=list)
    """The names of the fields the request sent (never their values)."""
    reason: str | None = None
    """Why a refused action was refused."""
    details: dict[str, Any] | None = None


class AuditList(msgspec.Struct):
    items: list[AuditEntry]
    cursor: str | None
    """For the next (older) page; null on the last."""
