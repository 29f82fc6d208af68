"""The original backend answered its lists whole; crmd pages them. For an original
client's list call without ``limit``, ``offset`` or ``cursor``, the pages are followed
here into one answer."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from crmd.http.admission import slot
from crmd.http.pages import MAX_LIMIT
from crmd.http.responses import plain_json

log = structlog.get_logger(__name__)

ORIGINAL_LIST_CAP = 10_000
"""At most this many items in one answer (logged as ``original.list_capped`` when
there were more)."""
PAGING = ("limit", "offset", "cursor")


def wants_all(request: web.Request) -> bool:
    return not any(name in request.query for name in PAGING)


async def in_full(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The list's pages, followed by their cursors into one answer of at most
    ``ORIGINAL_LIST_CAP`` items (the first failure is answered as it is). A list of
    more than one page is an expensive read: the pages after the first are read
    holding one of the user's read slots (or the answer is 429 ``busy``), and take no
    other."""
    url = request.rel_url.update_query(limit=MAX_LIMIT)
    page = await _page(request, handler, url)
    if not isinstance(page, dict):
        return page
    items: list[Any] = list(page.get("items") or [])
    cursor = page.get("cursor")
    if cursor:
        async with slot(request):
            while cursor and len(items) < ORIGINAL_LIST_CAP:
                url = url.update_query(cursor=cursor)
                page = await _page(request, handler, url)
                if not isinstance(page, dict):
                    return page
                items.extend(page.get("items") or [])
                cursor = page.get("cursor")
            if len(items) > ORIGINAL_LIST_CAP or (
                cursor and await _more_after(request, handler, url.update_query(cursor=cursor))
            ):
                log.info("original.list_capped", path=request.path, cap=ORIGINAL_LIST_CAP)
    whole = {**page, "items": items[:ORIGINAL_LIST_CAP]}
    if "cursor" in page:
        whole["cursor"] = None
    return plain_json(whole, 200)


async def _page(
    request: web.Request, handler: Handler, url: URL
) -> dict[str, Any] | web.StreamResponse:
    """One page's JSON, or the answer itself when it is not a page (an error)."""
    response = await handler(request.clone(rel_url=url))
    if not isinstance(response, web.Response) or response.status != 200:
        return response
    if not isinstance(response.body, bytes):
        return response
    page: dict[str, Any] = msgspec.json.decode(response.body)
    return page


async def _more_after(request: web.Request, handler: Handler, url: URL) -> bool:
    """Whether the list goes on past ``url``'s cursor (a full last page has a cursor
    whether or not anything follows it)."""
    page = await _page(request, handler, url.update_query(limit=1))
    return isinstance(page, dict) and bool(page.get("items"))
