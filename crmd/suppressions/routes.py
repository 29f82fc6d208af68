"""``/api/v1/suppressions``: the signed-in tenant's suppression list, listed, added to
(one address as JSON, or many as a CSV file) and taken from (one address, or every
address that came one way or from one campaign)."""

from __future__ import annotations

import re
from typing import Annotated, cast

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_store
from crmd.emails import InvalidEmail, normalise_email
from crmd.errors import BadRequest, Conflict, NotFound, Unprocessable, UnsupportedMediaType
from crmd.http.bodies import json_body
from crmd.http.describe import Media, Moment, described
from crmd.http.pages import DEFAULT_LIMIT, MAX_LIMIT, Limit, choice, whole_number
from crmd.http.responses import json_response
from crmd.http.schema import Body
from crmd.store import documents
from crmd.suppressions import entries
from crmd.suppressions.csvfile import MAX_ROWS, RejectedRow, parse_addresses
from crmd.suppressions.entries import MAX_REASON, SOURCES, Entry, Source
from crmd.suppressions.erased import SHOWN
from crmd.suppressions.erased import SOURCE as ERASURE

routes = web.RouteTableDef()
_CURSOR = re.compile(r"^[0-9]{1,15}$")


class Suppression(msgspec.Struct):
    email: str
    """The address; "" in an erased customer's entry (see ``erased``)."""
    reason: str
    source: Source
    campaignId: str | None
    """The campaign whose message led here (an unsubscribe link, a bounce)."""
    customerId: str | None
    createdAt: Moment
    erased: str | None = None
    """An erased customer's entry (``source`` is ``erasure``): the start of the keyed
    hash that is all crmd keeps of the address. It stays on the list for good."""


class SuppressionList(msgspec.Struct):
    items: list[Suppression]
    total: int
    cursor: str | None
    """Pass it back as ``cursor`` for the next page; null on the last."""


class SuppressionQuery(msgspec.Struct):
    limit: Limit = DEFAULT_LIMIT
    cursor: Annotated[str, msgspec.Meta(pattern=_CURSOR.pattern)] | None = None
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    """Only this address (0 or 1 items)."""


class AddSuppression(Body):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254, examples=["gone@example.com"])]
    reason: Annotated[str, msgspec.Meta(max_length=MAX_REASON)] = ""


class ImportReport(msgspec.Struct):
    received: int
    """Rows with something in them, the header left out."""
    added: int
    existing: int
    """Valid rows whose address was on the list already (or earlier in the file)."""
    rejected: int
    errors: list[RejectedRow]
    """Every rejected row, in file order."""


class RemovalQuery(msgspec.Struct):
    source: Source | None = None
    """Only the entries that came this way (``failure``: refused for good by a vendor)."""
    campaignId: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    """Only the entries that came from this campaign's messages."""


class Removed(msgspec.Struct):
    removed: int
    """How many addresses were taken off the list."""


class EmailPath(msgspec.Struct):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]


def suppression(entry: documents.Suppression) -> Suppression:
    return Suppression(
        entry.email,
        entry.reason,
        entry.source,
        entry.campaignId,
        entry.customerId,
        entry.createdAt,
        entry.erased[:SHOWN] or None,
    )


def _address(raw: str, field: str) -> str:
    try:
        return normalise_email(raw[:320])
    except InvalidEmail as exc:
        raise Unprocessable(
            f"{field} {exc}", code="invalid_email", details={"field": field}
        ) from None


@routes.get("/api/v1/suppressions")
@described(
    "List the suppressed addresses, newest first",
    tag="suppressions",
    query=SuppressionQuery,
    ok=SuppressionList,
)
async def list_suppressions(request: web.Request) -> web.Response:
    """A page costs a page; follow ``cursor`` until it is null to read the whole list."""
    store = tenant_store(request)
    limit = whole_number(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    raw_cursor = request.query.get("cursor")
    if raw_cursor and not _CURSOR.fullmatch(raw_cursor):
        raise BadRequest("cursor is not one this server gave out", details={"field": "cursor"})
    if "email" in request.query:
        found = await entries.find(store, _address(request.query["email"], "email"))
        items = [suppression(found)] if found else []
        return json_response(SuppressionList(items, len(items), None))
    window = await entries.newest_entries(store, int(raw_cursor) if raw_cursor else None, limit)
    total = (await store.tally())[entries.COLLECTION]
    cursor = None if window.next_before is None else str(window.next_before)
    return json_response(SuppressionList([suppression(d) for d in window.items], total, cursor))


@routes.post("/api/v1/suppressions")
@described(
    "Suppress an address (JSON), or every address in a CSV file",
    tag="suppressions",
    body=(
        AddSuppression,
        Media(
            "text/csv",
            {"type": "string"},
            f"a header naming an 'email' column (and optionally 'reason'), then at most "
            f"{MAX_ROWS:,} rows",
        ),
    ),
    ok={201: Suppression, 200: (Suppression, ImportReport)},
    errors=(415,),
)
async def add_suppressions(request: web.Request) -> web.Response:
    """JSON: 201 with the new entry, or 200 with the entry already there (its first
    reason stays). CSV: 200 with what was added, and every rejected row with its line
    and column; the valid rows are suppressed even when some are rejected."""
    store = tenant_store(request)
    if request.content_type == "text/csv":
        found, rejected = parse_addresses(await request.read())
        added, _ = await entries.suppress(store, found)
        received = len(found) + len(rejected)
        return json_response(
            ImportReport(received, added, len(found) - added, len(rejected), rejected)
        )
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            'send application/json ({"email", "reason"}) for one address, or text/csv '
            "(a header naming an 'email' column) for many",
        )
    body = await json_body(request, AddSuppression)
    email = _address(body.email, "$.email")
    added, _ = await entries.suppress(store, [Entry(email, body.reason.strip(), "operator")])
    doc = await entries.find(store, email)
    if doc is None:  # removed again in between: say what was asked for happened
        raise NotFound(f"{email} was taken off the list while it was being added")
    return json_response(suppression(doc), status=201 if added else 200)


@routes.delete("/api/v1/suppressions")
@described(
    "Take every address that came one way, or from one campaign, off the list",
    tag="suppressions",
    query=RemovalQuery,
    ok=Removed,
    errors=(409,),
)
async def remove_suppressions(request: web.Request) -> web.Response:
    """The undo of a mass suppression (a relay that refused a whole audience as dead
    addresses): ``?source=failure&campaignId=...`` takes off what that campaign's
    failures put on. At least one of ``source`` and ``campaignId`` is required, so the
    whole list is never emptied by a request that forgot its filter. Erased customers'
    entries are never taken off: ``source=erasure`` is 409, and other filters pass them
    by."""
    source = cast(Source | None, choice(request, "source", SOURCES))
    campaign = request.query.get("campaignId") or None
    if campaign is not None and len(campaign) > 64:
        raise Unprocessable("campaignId is not a campaign's id", details={"field": "campaignId"})
    if source is None and campaign is None:
        raise BadRequest(
            "name what to take off the list: source, campaignId or both (one address: "
            "DELETE /api/v1/suppressions/{email})",
            details={"field": "source"},
        )
    if source == ERASURE:
        raise Conflict(
            "erased customers' entries stay on the list for good: crmd no longer knows "
            "their addresses, only that it must never message them",
            details={"field": "source"},
            code="erased_entries_stay",
        )
    removed = await entries.remove_where(tenant_store(request), source, campaign)
    return json_response(Removed(removed))


@routes.delete("/api/v1/suppressions/{email}")
@described(
    "Take an address off the suppression list",
    tag="suppressions",
    path=EmailPath,
    ok={204: None},
)
async def remove_suppression(request: web.Request) -> web.Response:
    """The address may be sent to again from the next campaign planned. An erased
    customer's address is on the list only as its hash, which stays for good: naming
    the address here finds nothing (404)."""
    email = _address(request.match_info["email"], "email")
    if not await entries.remove(tenant_store(request), email):
        raise NotFound(f"{email} is not on the suppression list")
    return web.Response(status=204)
