"""Numbered pages of a list: "51-100 of 200 customers", and links to pages by number.

Records are numbered 1, 2, 3... as they are stored (``crmd.store.numbering``), and a
list shows the newest first, so page ``k`` starts below number ``top + 1 - (k - 1) *
size``: a page is found by arithmetic, not by reading the pages before it. Numbers a
crash left unused make a page reach a little further down, never skip a record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from crmd.console.web import query_number
from crmd.errors import BadRequest

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
        """Where this page's records start (the ``before`` of ``crmd.store.windows``)."""
        return top + 1 - (self.number - 1) * self.size

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
