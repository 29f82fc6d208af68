"""Numbered pages of a list: "51-100 of 200 customers", and links to pages by number.

Records are numbered 1, 2, 3... as they are stored (``crmd.store.numbering``), and a
list shows the newest first. While every number up to the highest is held (the tally
is the highest number), page ``k`` starts below number ``top + 1 - (k - 1) * size``:
found by arithmetic, not by reading the pages before it. Once some are not (records
deleted, numbers a crash left unused), arithmetic would show some records twice and
never reach the oldest, so the page's first record is found by counting down the
numbers index instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from crmd.console.web import query_number
from crmd.errors import BadRequest
from crmd.store.tenant import ScopedCollection

DASH = "\u2013"
SHOWN_AROUND = 2
"""Page links shown on each side of the current page (the first and last always)."""


@dataclass(frozen=True)
class Numbered:
    number: int
    size: int
    total: int
    """How many records there are in all (the user's tally)."""

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    def before(self, top: int) -> int:
        """Where this page's records start (the ``before`` of ``crmd.store.windows``),
        when every number up to ``top`` is held."""
        return top + 1 - (self.number - 1) * self.size

    async def start(self, records: ScopedCollection, top: int) -> int:
        """Where this page's records start, whether or not numbers are missing: by
        arithmetic while none is (the tally is ``top``), else below the number of the
        page's first record, counted down the index (the pages before it are skipped
        over in the index, not read)."""
        if self.number == 1 or self.total >= top:
            return self.before(top)
        skipped = (self.number - 1) * self.size
        found = records.find({}, projection={"n": 1}, sort=[("n", -1)], skip=skipped, limit=1)
        first = [doc async for doc in found]
        return int(first[0]["n"]) + 1 if first else 1

    def said(self, shown: int, what: str) -> str:
        """``51-100 of 200 customers``."""
        if not shown:
            return f"0 of {self.total:,} {what}" if self.total else ""
        first = (self.number - 1) * self.size + 1
        last = first + shown - 1
        return f"{first:,}{DASH}{last:,} of {max(self.total, last):,} {what}"

    def links(self) -> list[int | None]:
        """The page numbers to link to, None where a run of them is left out."""
        around = range(
            max(1, self.number - SHOWN_AROUND), min(self.pages, self.number + SHOWN_AROUND) + 1
        )
        wanted = sorted({1, self.pages, *around})
        shown: list[int | None] = []
        previous = 0
        for number in wanted:
            if previous and number - previous > 1:
                shown.append(None)
            shown.append(number)
            previous = number
        return shown

    def context(self, shown: int, what: str, base: str) -> dict[str, Any]:
        """What ``macros.html``'s ``numbered`` pager shows."""
        return {
            "number": self.number,
            "pages": self.pages,
            "links": self.links(),
            "said": self.said(shown, what),
            "base": base,
            "join": "&" if "?" in base else "?",
        }


def numbered(request: web.Request, total: int, size: int) -> Numbered:
    """The page the address asks for (``?page=3``; the first without one)."""
    number = query_number(request, "page") or 1
    page = Numbered(number, size, total)
    if number > page.pages:
        raise BadRequest(f"there are {page.pages} pages", details={"field": "page"})
    return page
