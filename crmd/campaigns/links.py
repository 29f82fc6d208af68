"""Finding a campaign's links, so that each can be sent as the recipient's own click
link (pure: templates in, templates out).

A link is tracked when the template writes it whole: an ``http(s)`` address in the text
body, an ``href`` to one in the HTML body. One that a placeholder builds or ends
(``https://shop.example/?code={attrs.code}``) differs per recipient, so it is sent as
it is: the redirect only ever goes to an address the campaign itself holds
(``Campaign.links``), never to one a token could name. ``{unsubscribe_url}`` is a
placeholder, never a link here. The same address written twice (in the text and the
HTML, say) is one link, counted once.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from crmd.campaigns.template import Link, Part, Placeholder

MAX_LINKS = 100
"""Links tracked per campaign; any further ones are sent as they are."""
MAX_URL = 2000
TEXT_URL = re.compile(r"https?://[^\s<>\"'`{}\[\]()|\\^]+", re.IGNORECASE)
TRAILING = ".,;:!?*"
"""Punctuation that ends a sentence rather than an address: 'see https://x.example.'"""
HREF = re.compile(r"""(?P<lead>\bhref\s*=\s*)(?:"(?P<dq>[^"<>]*)"|'(?P<sq>[^'<>]*)')""", re.I)
WEB = re.compile(r"https?://[^\s/?#]+", re.IGNORECASE)


class Catalogue:
    """The distinct addresses met so far, in order: a link's index is its place."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self._index: dict[str, int] = {}

    def index(self, url: str) -> int | None:
        """The address's index, a new one if needed; None when it is not to be tracked
        (too long, or past MAX_LINKS)."""
        if len(url) > MAX_URL or not WEB.match(url):
            return None
        if url not in self._index:
            if len(self.urls) >= MAX_LINKS:
                return None
            self._index[url] = len(self.urls)
            self.urls.append(url)
        return self._index[url]


def tracked(message: list[Part], body: list[Part]) -> tuple[list[Part], list[Part], list[str]]:
    """The text and HTML templates with their links as ``Link`` parts, and the
    campaign's distinct addresses (a ``Link``'s index is its place in them)."""
    catalogue = Catalogue()
    text = _split(message, catalogue, _text_links)
    page = _split(body, catalogue, _html_links)
    return text, page, catalogue.urls


Finder = Callable[[str, Catalogue, bool, bool], list[Part]]


def _split(parts: list[Part], catalogue: Catalogue, find: Finder) -> list[Part]:
    out: list[Part] = []
    for i, part in enumerate(parts):
        if not isinstance(part, str):
            out.append(part)
            continue
        after_value = i > 0 and isinstance(parts[i - 1], Placeholder)
        before_value = i + 1 < len(parts) and isinstance(parts[i + 1], Placeholder)
        out.extend(find(part, catalogue, after_value, before_value))
    return out


def _text_links(
    text: str, catalogue: Catalogue, after_value: bool, before_value: bool
) -> list[Part]:
    out: list[Part] = []
    done = 0
    for match in TEXT_URL.finditer(text):
        url = match.group().rstrip(TRAILING)
        start, end = match.start(), match.start() + len(url)
        if (start == 0 and after_value) or (end == len(text) and before_value):
            continue  # a value completes the address: it differs per recipient
        index = catalogue.index(url)
        if index is None:
            continue
        out.extend(_literal(text[done:start]))
        out.append(Link(index, url))
        done = end
    out.extend(_literal(text[done:]))
    return out


def _html_links(
    text: str, catalogue: Catalogue, after_value: bool, before_value: bool
) -> list[Part]:
    out: list[Part] = []
    done = 0
    for match in HREF.finditer(text):
        group = "dq" if match.group("dq") is not None else "sq"
        written = match.group(group)
        index = catalogue.index(html.unescape(written).strip())
        if index is None:
            continue
        out.extend(_literal(text[done : match.start(group)]))
        out.append(Link(index, written))
        done = match.end(group)
    out.extend(_literal(text[done:]))
    return out


def _literal(text: str) -> list[Part]:
    return [text] if text else []
