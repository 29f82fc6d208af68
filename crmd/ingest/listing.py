"""``GET /customers`` and ``GET /orders``: a page costs a page.

Records are numbered as they arrive (``crmd.store.numbering``), so a page is a range of
numbers under the cursor (``crmd.store.windows``), never a sort of the whole collection.
``total`` is the user's tally, kept as records arrive; with a ``rule`` it is the rule's
count (``crmd.segments.counting``: kept per slice of customers, so counting it again
costs only what changed), taken on the first page (or on any page with ``total=exact``)
and carried in the cursor; null while it is still being counted. A rule is tested in
Python (the reference evaluator) on each range read, so a filtered page reads at most
``FILTERED_SCAN`` records: it may hold fewer than ``limit`` items, and its cursor goes on
from where it stopped; a list is read whole by following ``cursor`` until null.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from crmd.auth.requests import tenant_id, tenant_store
from crmd.errors import BadRequest
from crmd.http.admission import slot
from crmd.http.pages import PageQuery, read_page
from crmd.http.responses import json_response
from crmd.ingest.schema import RecordList
from crmd.segments.counting import COUNTS
from crmd.segments.evaluate import evaluate
from crmd.segments.parse import parse_rule
from crmd.segments.query import rule_filter, rule_now
from crmd.store.documents import Customer, Order, decode_record, encode_record
from crmd.store.windows import FILTERED_SCAN, MAX_SCAN, Window, newest

HIDDEN = {"userId": 0, "_v": 0}
RECORDS: dict[str, type[Customer] | type[Order]] = {"customers": Customer, "orders": Order}
_CURSOR = re.compile(r"^([0-9]{1,15})(?:\.([0-9]{1,15})(?:\.([0-9a-f]{8}))?)?$")


class RecordsQuery(PageQuery):
    cursor: Annotated[str, msgspec.Meta(pattern=_CURSOR.pattern)] | None = None


class CustomersQuery(RecordsQuery):
    rule: (
        Annotated[str, msgspec.Meta(max_length=2000, examples=["spend > 1000 AND visits >= 3"])]
        | None
    ) = None
    """Only the customers this rule matches."""
    total: Literal["exact"] | None = None
    """``exact``: count a rule's matches on this page too, not only on the first."""


def _cursor(request: web.Request, user: str, rule: str | None) -> tuple[int | None, int | None]:
    """(the number the page starts under, the total carried) from ``cursor``; a total
    not carried for this user's rule (another rule's cursor) is not taken."""
    raw = request.query.get("cursor")
    if not raw:
        return None, None
    found = _CURSOR.fullmatch(raw)
    if found is None:
        raise BadRequest("cursor is not one this server gave out", details={"field": "cursor"})
    carried = int(found[2]) if found[2] else None
    if carried is not None and (rule is None or found[3] != _tag(user, rule, carried)):
        carried = None  # counted again
    return int(found[1]), carried


def _tag(user: str, rule: str, total: int) -> str:
    """What binds a carried total to its user and rule."""
    return hashlib.sha256(f"{user}\n{rule}\n{total}".encode()).hexdigest()[:8]


async def list_records(
    request: web.Request, collection: Literal["customers", "orders"]
) -> web.Response:
    page = read_page(request, keyset=False)
    store = tenant_store(request)
    user = tenant_id(request)
    rule = request.query.get("rule") if collection == "customers" else None
    before, carried = _cursor(request, user, rule)
    skip = page.offset if before is None else 0
    top, tallies = await store.highest_and_tally(collection)
    if not rule:
        # A deep offset reads every record above it: an expensive read, slot and all.
        async with slot(request) if skip > MAX_SCAN else contextlib.nullcontext():
            window = await newest(
                store[collection],
                top,
                before=before,
                limit=skip + page.limit,
                projection=HIDDEN,
                max_scan=max(MAX_SCAN, skip + page.limit),
            )
        return _page(window, skip, tallies[collection], rule, user, RECORDS[collection])
    rule_filter(rule)  # 422 with the column for a bad rule
    node, now = parse_rule(rule), rule_now()
    # An offset counts matches: as far as it takes; a cursor's page: bounded. Only the
    # reading holds an expensive read's slot, not the wait for the count.
    async with slot(request):
        window = await newest(
            store[collection],
            top,
            before=before,
            limit=skip + page.limit,
            keep=lambda doc: evaluate(node, doc, now),
            projection=HIDDEN,
            max_scan=top + 1 if skip else FILTERED_SCAN,
        )
    total = carried
    if carried is None or request.query.get("total") == "exact":
        counted = await request.app[COUNTS].count(store, rule)
        total = counted.size if counted.complete else None
    return _page(window, skip, total, rule, user, Customer)


def _page(
    window: Window,
    skip: int,
    total: int | None,
    rule: str | None,
    user: str,
    kind: type[Customer] | type[Order],
) -> web.Response:
    items = [_view(decode_record(doc, kind)) for doc in window.items[skip:]]
    following = window.next_before
    cursor = None if following is None else str(following)
    if cursor and rule and total is not None:
        cursor += f".{total}.{_tag(user, rule, total)}"
    return json_response(RecordList(items, total, cursor))


def _view(record: Customer | Order) -> dict[str, Any]:
    """The record as stored, ``_id`` as ``id``, without its number."""
    doc = encode_record(record)
    doc["id"] = doc.pop("_id")
    doc.pop("n", None)
    return doc
