"""A page of a user's records, newest first, that reads about a page.

Records carry ``n`` (``crmd.store.numbering``). A page below ``before`` reads the range
``[before - span, before)``, then the range under it, until it has ``limit`` records or
has read ``max_scan`` documents. A filter the database would run over the whole
collection (a rule) is applied here, in Python, to what each range brought: a page
with a filter costs at most ``max_scan`` documents however few match, and says how far
it looked, so that the next page looks on from there.

An empty range costs next to nothing, so the span grows over a gap (numbers a crash
left unused), but never past ``max_scan`` numbers, and a page asks at most
``MAX_RANGES`` ranges: a page never reads more than ``max_scan`` documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crmd.store.documents import Doc
from crmd.store.tenant import ScopedCollection

MAX_SCAN = 2000
FILTERED_SCAN = 200
"""The most records a filtered page reads (a rule, a status), in the console and the
API: about 25 ms of the embedded database's time. A page with few matches may hold
fewer than its limit; its cursor goes on from where it stopped."""
MAX_RANGES = 64


@dataclass
class Window:
    items: list[Doc] = field(default_factory=list)
    next_before: int | None = None
    """Where the next page starts (None: nothing older)."""
    scanned: int = 0
    """Documents read."""
    lowest: int | None = None
    """The lowest ``n`` looked at."""


async def newest(
    collection: ScopedCollection,
    top: int,
    *,
    before: int | None = None,
    limit: int = 50,
    where: Mapping[str, Any] | None = None,
    keep: Callable[[Doc], bool] | None = None,
    projection: Mapping[str, Any] | None = None,
    number: str = "n",
    max_scan: int = MAX_SCAN,
) -> Window:
    """Up to ``limit`` records with ``number`` below ``before`` (or at most ``top``, the
    highest number given out), newest first, that match ``where`` and ``keep``."""
    hi = min(before if before is not None else top + 1, top + 1)
    window = Window()
    # Unfiltered, a range of limit + 1 numbers holds the page and says whether another
    # follows; numbers a crash (or an import still writing the newest) left unused make
    # it come back short, and the next range asks for what is missing.
    span = min(limit + 1 if keep is None else max(limit * 4, 256), max_scan)
    taken: list[Doc] = []
    ranges = 0
    while hi > 1 and len(taken) < limit and window.scanned < max_scan and ranges < MAX_RANGES:
        ranges += 1
        lo = max(1, hi - span)
        query = {**(where or {}), number: {"$gte": lo, "$lt": hi}}
        found = [doc async for doc in collection.find(query, projection=projection)]
        window.scanned += len(found)
        window.lowest = lo
        found.sort(key=lambda d: d.get(number, 0), reverse=True)
        taken += [d for d in found if keep is None or keep(d)]
        hi = lo
        # Empty: skip ahead faster. Full: do not read more than the budget allows.
        budget = max(max_scan - window.scanned, 1)
        if keep is None and found:
            span = min(max(2 * (limit + 1 - len(taken)), 16), budget)
        else:
            span = min(span * 4 if not found else span * 2, budget)
    window.items = taken[:limit]
    if len(taken) > limit:
        window.next_before = window.items[-1][number]
    elif hi > 1:
        window.next_before = hi
    return window


async def oldest(
    collection: ScopedCollection,
    top: int,
    *,
    after: int = 0,
    limit: int = 50,
    where: Mapping[str, Any] | None = None,
    keep: Callable[[Doc], bool] | None = None,
    projection: Mapping[str, Any] | None = None,
    number: str = "n",
    max_scan: int = MAX_SCAN,
) -> Window:
    """``newest`` the other way: up to ``limit`` records numbered above ``after`` (and
    at most ``top``), oldest first; ``next_before`` is then the number to go on after."""
    lo = max(after + 1, 1)
    window = Window()
    span = min(max(limit * 2, 64) if keep is None else max(limit * 4, 256), max_scan)
    taken: list[Doc] = []
    ranges = 0
    while lo <= top and len(taken) < limit and window.scanned < max_scan and ranges < MAX_RANGES:
        ranges += 1
        hi = min(lo + span, top + 1)
        query = {**(where or {}), number: {"$gte": lo, "$lt": hi}}
        found = [doc async for doc in collection.find(query, projection=projection)]
        window.scanned += len(found)
        found.sort(key=lambda d: d.get(number, 0))
        taken += [d for d in found if keep is None or keep(d)]
        lo = hi
        budget = max(max_scan - window.scanned, 1)
        span = min(span * 4 if not found else span * 2, budget)
    window.items = taken[:limit]
    if len(taken) > limit:
        window.next_before = window.items[-1][number]
    elif lo <= top:
        window.next_before = lo - 1
    return window
