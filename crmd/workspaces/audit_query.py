"""Reading the audit log: the filters a list takes, as a query; a page of entries,
newest first; every entry that matches, as CSV. Reads only: ``crmd.workspaces.audit``
is the one module that writes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web
from bson import ObjectId

from crmd.errors import BadRequest, Unprocessable
from crmd.http.spreadsheet import csv_line
from crmd.store.limits import to_utc
from crmd.store.tenant import TenantStore
from crmd.workspaces.audit import COLLECTION
from crmd.workspaces.audit_schema import AuditBy, AuditEntry, AuditList, AuditQuery

CSV_COLUMNS = ("at", "action", "outcome", "by", "from", "objectId", "fields", "reason")
NEWEST_FIRST = [("at", -1), ("_id", -1)]
_CURSOR = re.compile(r"([0-9]{1,15})\.([0-9a-f]{24})")
_FIELD_IN_ERROR = re.compile(r"at `\$\.([A-Za-z]+)`|unknown field `([^`]{0,40})`")
_PLUS_LOST = re.compile(r" ([0-9]{2}:?[0-9]{2})$")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")
EXAMPLE_TIME = "2026-12-07T09:30:00Z"


def read_query(raw: Mapping[str, str]) -> AuditQuery:
    """The filters from a query string (an empty value is no filter: a form sends its
    empty fields); a bad one is 422 naming it, an unknown name included."""
    given = {name: value for name, value in raw.items() if value != ""}
    for name in ("since", "until"):
        if name in given:  # "+05:30" typed into an address unescaped arrives as " 05:30"
            given[name] = _complete(_PLUS_LOST.sub(r"+\1", given[name]))
    try:
        query = msgspec.convert(given, AuditQuery, strict=False)
    except msgspec.ValidationError as exc:
        raise _refusal(str(exc)) from None
    for name in ("since", "until"):
        at = getattr(query, name)
        if at is not None:
            utc = to_utc(at)
            if utc is None:
                raise _bad_time(name)
            setattr(query, name, utc)
    if query.since and query.until and query.since >= query.until:
        raise Unprocessable(
            "since must be before until",
            code="invalid_parameter",
            details={"field": "until"},
        )
    return query


def _complete(text: str) -> str:
    """A day alone is its midnight, a time without seconds at ``:00`` (a form's date and
    time fields send both), in UTC unless an offset is given."""
    if _DAY.fullmatch(text):
        return text + "T00:00:00"
    return text + ":00" if _MINUTE.fullmatch(text) else text


def _refusal(message: str) -> Unprocessable:
    found = _FIELD_IN_ERROR.search(message)
    field = (found[1] or found[2]) if found else ""
    if field in ("since", "until"):
        return _bad_time(field)
    if found and found[2]:
        return Unprocessable(
            f"{field!r} is not a filter of the audit log (action, who, objectId, outcome, "
            "since, until, limit, cursor)",
            code="invalid_parameter",
            details={"field": field},
        )
    said = {
        "action": "action must be an action (campaign.sent) or a prefix ending in a dot "
        "(campaign.)",
        "outcome": "outcome must be done or refused",
        "limit": "limit must be a whole number from 1 to 500",
    }.get(field, message)
    return Unprocessable(said, code="invalid_parameter", details={"field": field or None})


def _bad_time(name: str) -> Unprocessable:
    return Unprocessable(
        f"{name} must be an ISO 8601 time, such as {EXAMPLE_TIME}",
        code="invalid_parameter",
        details={"field": name},
    )


def where(query: AuditQuery) -> dict[str, Any]:
    """The MongoDB filter of ``query``'s filters and cursor (the workspace is the
    store's to add)."""
    parts: list[dict[str, Any]] = []
    if query.action is not None:
        if query.action.endswith("."):  # a prefix: every name from "x." up to "x/"
            parts.append({"action": {"$gte": query.action, "$lt": query.action[:-1] + "/"}})
        else:
            parts.append({"action": query.action})
    if query.who is not None:
        who = query.who
        parts.append(
            {"$or": [{"by.userId": who}, {"by.keyId": who}, {"by.email": who.strip().lower()}]}
        )
    if query.objectId is not None:
        parts.append({"objectId": query.objectId})
    if query.outcome is not None:
        parts.append({"outcome": query.outcome})
    span = {op: at for op, at in (("$gte", query.since), ("$lt", query.until)) if at is not None}
    if span:
        parts.append({"at": span})
    if query.cursor is not None:
        at, last = _after(query.cursor)
        parts.append({"$or": [{"at": {"$lt": at}}, {"at": at, "_id": {"$lt": last}}]})
    if not parts:
        return {}
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _after(cursor: str) -> tuple[datetime, ObjectId]:
    found = _CURSOR.fullmatch(cursor)
    try:
        if found is None:
            raise ValueError(cursor)
        return datetime.fromtimestamp(int(found[1]) / 1000, UTC), ObjectId(found[2])
    except (ValueError, OverflowError, OSError):  # (a time past the year 9999)
        raise BadRequest(
            "cursor is not one this server gave out", details={"field": "cursor"}
        ) from None


def cursor_of(doc: Mapping[str, Any]) -> str:
    at = _utc(doc["at"])
    return f"{round(at.timestamp() * 1000)}.{doc['_id']}"


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def entry_view(doc: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        id=str(doc["_id"]),
        at=_utc(doc["at"]),
        action=doc["action"],
        outcome=doc["outcome"],
        by=msgspec.convert(doc.get("by") or {}, AuditBy),
        from_=doc.get("from", ""),
        objectId=doc.get("objectId", ""),
        fields=list(doc.get("fields", [])),
        reason=doc.get("reason"),
        details=doc.get("details"),
    )


async def audit_page(store: TenantStore, query: AuditQuery) -> AuditList:
    """A page of the entries that match, newest first, and the next page's cursor."""
    found = store[COLLECTION].find(where(query), sort=NEWEST_FIRST, limit=query.limit + 1)
    docs = [doc async for doc in found]
    more = len(docs) > query.limit
    docs = docs[: query.limit]
    return AuditList([entry_view(d) for d in docs], cursor_of(docs[-1]) if more else None)


def by_cell(by: AuditBy) -> str:
    if by.keyId:
        return f"key {by.keyName or ''} ({by.keyId})"
    return by.email or by.userId or ""


async def audit_csv(store: TenantStore, query: AuditQuery) -> AsyncIterator[bytes]:
    """Every entry that matches, not one page (``limit`` and ``cursor`` are left
    aside), newest first, as CSV in pieces of about 64 KiB. Every cell is made safe to
    open in a spreadsheet (``crmd.http.spreadsheet``)."""
    lines = [csv_line(CSV_COLUMNS)]
    size = len(lines[0])
    wanted = where(msgspec.structs.replace(query, cursor=None))
    async for doc in store[COLLECTION].find(wanted, sort=NEWEST_FIRST, batch_size=1000):
        entry = entry_view(doc)
        cells = (
            entry.at.isoformat(),
            entry.action,
            entry.outcome,
            by_cell(entry.by),
            entry.from_,
            entry.objectId,
            " ".join(entry.fields),
            entry.reason or "",
        )
        lines.append(csv_line(cells))
        size += len(lines[-1])
        if size > 64 * 1024:
            yield "".join(lines).encode()
            lines, size = [], 0
    yield "".join(lines).encode()


async def csv_response(
    request: web.Request, store: TenantStore, query: AuditQuery
) -> web.StreamResponse:
    """``audit_csv`` streamed as a download (the API's and the console's)."""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="audit-{day}.csv"',
        }
    )
    await response.prepare(request)
    async for piece in audit_csv(store, query):
        await response.write(piece)
    await response.write_eof()
    return response
