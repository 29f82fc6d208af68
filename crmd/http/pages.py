"""Pagination: ``limit`` with ``offset`` or an opaque ``cursor``, newest first."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web

from crmd.errors import BadRequest, Unprocessable
from crmd.store.limits import to_utc
from crmd.store.tenant import TenantStore
from crmd.store.windows import MAX_SCAN, newest

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 10_000_000
MAX_NUMBER = 10**15
Limit = Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)]


class PageQuery(msgspec.Struct):
    """``limit`` and ``offset`` as ``read_page`` reads them, for the API's document."""

    limit: Limit = DEFAULT_LIMIT
    offset: Annotated[int, msgspec.Meta(ge=0, le=MAX_OFFSET)] = 0


class Page(msgspec.Struct, frozen=True):
    limit: int
    offset: int
    after: tuple[datetime, Any] | None
    """The (createdAt, _id) of the last item already seen."""


def whole_number(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter from ``low`` to ``high``: ``default`` when absent,
    else 400 naming it (``details.field``)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(
            f"{name} must be a whole number, not {raw[:20]!r}", details={"field": name}
        ) from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}", details={"field": name})
    return value


def choice(
    request: web.Request, name: str, allowed: Sequence[str], upper: bool = False
) -> str | None:
    """An enumerated query parameter: absent (None), one of ``allowed``, or 422 naming
    the values it may take."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    value = raw.upper() if upper else raw
    if value not in allowed:
        raise Unprocessable(
            f"{name} must be one of {', '.join(allowed)}, not {raw[:40]!r}",
            code="invalid_parameter",
            details={"field": name, "allowed": list(allowed)},
        )
    return value


def read_page(request: web.Request, keyset: bool = True) -> Page:
    """``limit`` and ``offset``; with ``keyset``, also this module's (createdAt, _id)
    ``cursor``. Lists with cursors of their own read them themselves."""
    limit = whole_number(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = whole_number(request, "offset", 0, 0, MAX_OFFSET)
    cursor = request.query.get("cursor") if keyset else None
    after = None
    if cursor:
        try:
            raw = msgspec.json.decode(
                base64.urlsafe_b64decode(cursor.encode()), type=tuple[datetime, str]
            )
        except (ValueError, msgspec.DecodeError, RecursionError):
            raise BadRequest(
                "cursor is not one this server gave out", details={"field": "cursor"}
            ) from None
        created = to_utc(raw[0])
        if created is None:
            raise BadRequest("cursor is not one this server gave out", details={"field": "cursor"})
        after = (created, raw[1])
    return Page(limit=limit, offset=offset, after=after)


def before_cursor(request: web.Request) -> int | None:
    """A list whose ``cursor`` is the number its next page starts under (the records'
    ``n``): that, or None for the first page."""
    cursor = request.query.get("cursor")
    if not cursor:
        return None
    if not (cursor.isascii() and cursor.isdigit()) or int(cursor) > MAX_NUMBER:
        raise BadRequest("cursor is not one this server gave out", details={"field": "cursor"})
    return int(cursor)


async def newest_page(
    store: TenantStore, kind: str, page: Page, before: int | None, **window: Any
) -> tuple[list[dict[str, Any]], str | None, int]:
    """A page of the user's ``kind`` records, newest first, read as a range of their
    numbers (``crmd.store.windows``), with the cursor of the next page (None: the last)
    and how many there are (the tally). An ``offset`` counts from the newest; a cursor
    from where its page ended. Two reads: the counters, and the range."""
    skip = page.offset if before is None else 0
    top, tallies = await store.highest_and_tally(kind)
    found = await newest(
        store[kind],
        top,
        before=before,
        limit=skip + page.limit,
        max_scan=max(MAX_SCAN, skip + page.limit),
        **window,
    )
    following = found.next_before
    return found.items[skip:], None if following is None else str(following), tallies[kind]


def page_filter(page: Page) -> dict[str, Any]:
    """Items strictly older than the cursor, in (createdAt desc, _id desc) order."""
    if page.after is None:
        return {}
    created, last_id = page.after
    return {
        "$or": [{"createdAt": {"$lt": created}}, {"createdAt": created, "_id": {"$lt": last_id}}]
    }


def next_cursor(items: list[dict[str, Any]], page: Page) -> str | None:
    if len(items) < page.limit:
        return None
    last = items[-1]
    raw = msgspec.json.encode((last["createdAt"], str(last["_id"])))
    return base64.urlsafe_b64encode(raw).decode()
