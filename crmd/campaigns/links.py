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

from crmd.campaigns.template import Link, Part, Placeholder

MAX_LINKS = 100
"""Links tracked per campaign; any further ones are sent as they are."""
MAX_URL = 2000
TEXT_URL = re.compile(r"https?://[^\s<>\"'`{}\[\]|\\^]+", re.IGNORECASE)
TRAILING = ".,;:!?*"
"""Punctuation that ends a sentence rather than an address: 'see https://x.example.'"""
HREF = re.compile(r"""(?<=\s)href\s*=\s*(?:"(?P<dq>[^"<>]*)"|'(?P<sq>[^'<>]*)')""", re.I)
IN_ANCHOR = re.compile(r"<\s*(?:a|area)\s[^<>]*$", re.IGNORECASE)
"""The HTML before an ``href`` ends inside an ``<a>`` or ``<area>`` tag: a link a person
follows (a stylesheet's ``<link href>`` is fetched by the mail program on every open)."""
SEEN = 2000
"""How much of the HTML before an ``href`` is looked at for its tag."""
WEB = re.compile(r"https?://[^\s/?#]+", re.IGNORECASE)


class Catalogue:
    """The distinct addresses met so far, in order: a link's index is its place."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self._index: dict[str, int] = {}

    def index(self, url: str) -> int | None:
        """The address's index, a new one if needed; None when it is not to be tracked
        (too long, or past MAX_LINKS)."""
        if len(url) > MAX_URL or not WEB.match(url) or not url.isprintable() or " " in url:
            return None  # a line break would be a header's (the redirect's Location)
        if url not in self._index:
            if len(self.urls) >= MAX_LINKS:
                return None
            self._index[url] = len(self.urls)
            self.urls.append(url)
        return self._index[url]


def tracked(
    message: list[Part], body: list[Part], catalogue: Catalogue | None = None
) -> tuple[list[Part], list[Part], list[str]]:
    """The text and HTML templates with their links as ``Link`` parts, and the
    campaign's distinct addresses (a ``Link``'s index is its place in them). An A/B
    test's variants share one ``catalogue``, so an index names one address in all."""
    catalogue = catalogue or Catalogue()
    text = _text_links(message, catalogue)
    page = _html_links(body, catalogue)
    return text, page, catalogue.urls


def _text_links(parts: list[Part], catalogue: Catalogue) -> list[Part]:
    out: list[Part] = []
    for i, part in enumerate(parts):
        if not isinstance(part, str):
            out.append(part)
            continue
        after_value = i > 0 and isinstance(parts[i - 1], Placeholder)
        before_value = i + 1 < len(parts) and isinstance(parts[i + 1], Placeholder)
        out.extend(_in_text(part, catalogue, after_value, before_value))
    return out


def _address(found: str) -> str:
    """The address a match in text is: without the punctuation that ends a sentence, or
    a closing bracket it does not open ('(see https://x.example/a_(b))')."""
    url = found.rstrip(TRAILING)
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1].rstrip(TRAILING)
    return url


def _in_text(text: str, catalogue: Catalogue, after_value: bool, before_value: bool) -> list[Part]:
    out: list[Part] = []
    done = 0
    for match in TEXT_URL.finditer(text):
        url = _address(match.group())
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


def _html_links(parts: list[Part], catalogue: Catalogue) -> list[Part]:
    out: list[Part] = []
    seen = ""  # the HTML so far (a value as one character), for the tag an href is in
    for part in parts:
        if isinstance(part, str):
            out.extend(_in_html(part, catalogue, seen))
        else:
            out.append(part)
        seen = (seen + (part if isinstance(part, str) else "x"))[-SEEN:]
    return out


def _in_html(text: str, catalogue: Catalogue, seen: str) -> list[Part]:
    out: list[Part] = []
    done = 0
    for match in HREF.finditer(text):
        if not IN_ANCHOR.search((seen + text[: match.start()])[-SEEN:]):
            continue  # not an <a> or <area>: a stylesheet, a data-href...
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
