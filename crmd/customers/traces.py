"""A person's traces in stored values: found and replaced, in any document's shape.

Pure. Erasure (``crmd.customers.erasure``) reads documents whose shape it does not own
(a webhook's JSON payload, a rejected CSV row, an upload's error messages, a vendor's
bounce reason) and must leave none of the customer's address, name or own id in them.
``Traces`` holds what identifies one customer and what each is replaced by, and walks a
value of any depth: strings, lists, dicts (their values; keys are crmd's own names).

A trace is matched whole, never inside a longer word: the external id ``C1`` is not
found in ``C10``, nor ``ada@example.com`` in ``pada@example.com``. Matching ignores case.
A value that is only a trace (``"C1"``, the name alone) becomes ``ERASED`` whole.

``strict``: only the address and the crmd id are looked for, never the name or the
external id. For documents of crmd's own making (a campaign, a flow, an upload, an
audit entry), where a value equal to someone's name or external id (``active``,
``completed``, a vendor's name) is a status or a setting, not a trace of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ERASED = "[erased]"
"""What an address, a name or an external id becomes."""
_BEFORE = r"(?<![\w.+@-])"
_AFTER = r"(?![\w+@-]|\.\w)"
"""A trace next to a character that continues an address or an id is part of a longer
word, and not the trace (a full stop ending a sentence does not continue it)."""
MIN_NAME = 2
"""A name shorter than this (one letter) is not looked for: it would match anything."""
DISTINCT_ID = 4
"""An external id this long, with a letter in it, is looked for inside texts; a shorter
or all-digit one (``7``, ``1001``) only as a whole value or quoted, as a number in a
text (a line number, an amount) would otherwise be taken for it."""


def _pattern(needles: list[str]) -> re.Pattern[str] | None:
    wanted = sorted({n for n in needles if n}, key=len, reverse=True)  # longest first
    if not wanted:
        return None
    alternatives = "|".join(re.escape(n) for n in wanted)
    return re.compile(rf"{_BEFORE}(?:{alternatives}){_AFTER}", re.IGNORECASE)


@dataclass(frozen=True)
class Traces:
    """What identifies one customer in stored text, and what replaces each.

    ``found_in`` tells whether a document is about the customer: it holds their address,
    crmd id or (``DISTINCT_ID``) external id, or a value that is exactly their external
    id or name (or either quoted, as in a JSON text). A name alone inside a longer text
    does not make a document theirs (another customer may share it); ``scrubbed`` then
    replaces it too, in the documents that are."""

    email: str
    name: str
    external_id: str
    customer_id: str
    pseudonym: str
    """What the customer's crmd id becomes: the same in every document of one erasure,
    so a campaign's figures still count one person once; drawn at random, so it is
    derived from nothing of theirs."""
    _whole: frozenset[str] = field(init=False, default=frozenset(), compare=False)
    _strong: re.Pattern[str] | None = field(init=False, default=None, compare=False)
    _any: re.Pattern[str] | None = field(init=False, default=None, compare=False)
    _strict: re.Pattern[str] | None = field(init=False, default=None, compare=False)

    def __post_init__(self) -> None:
        name = self.name.strip()
        whole = {v.casefold() for v in (self.external_id, name, self.email) if v}
        named = name if len(name) >= MIN_NAME else ""
        quoted = [f'"{v}"' for v in (self.external_id, named) if v]
        distinct = len(self.external_id) >= DISTINCT_ID and not self.external_id.isdigit()
        strong = [self.email, self.customer_id, *quoted, self.external_id if distinct else ""]
        loose = [*strong, named]
        object.__setattr__(self, "_whole", frozenset(whole))
        object.__setattr__(self, "_strong", _pattern(strong))
        object.__setattr__(self, "_any", _pattern(loose))
        object.__setattr__(self, "_strict", _pattern([self.email, self.customer_id]))

    def _replacement(self, found: re.Match[str]) -> str:
        text = found.group(0)
        if text.casefold() == self.customer_id.casefold():
            return self.pseudonym
        return f'"{ERASED}"' if text.startswith('"') else ERASED

    def found_in(self, value: Any, strict: bool = False) -> bool:
        """Whether ``value`` (of any depth) is about the customer (see the class)."""
        if isinstance(value, str):
            if strict:
                return self._strict is not None and self._strict.search(value) is not None
            if value.strip().casefold() in self._whole:
                return True
            return self._strong is not None and self._strong.search(value) is not None
        if isinstance(value, Mapping):
            return any(self.found_in(v, strict) for v in value.values())
        if isinstance(value, list | tuple):
            return any(self.found_in(v, strict) for v in value)
        return False

    def scrubbed(self, value: Any, strict: bool = False) -> Any:
        """``value`` with every trace replaced (``ERASED``, the crmd id by the
        pseudonym); what holds none comes back equal."""
        if isinstance(value, str):
            if strict:
                return self._strict.sub(self._replacement, value) if self._strict else value
            if value.strip().casefold() in self._whole:
                return ERASED
            if self._any is None:
                return value
            return self._any.sub(self._replacement, value)
        if isinstance(value, Mapping):
            return {k: self.scrubbed(v, strict) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrubbed(v, strict) for v in value]
        return value

    def changes(
        self, doc: Mapping[str, Any], keep: frozenset[str] = frozenset(), strict: bool = False
    ) -> dict[str, Any]:
        """The ``$set`` that scrubs ``doc``'s top-level fields (``_id``, ``userId`` and
        ``keep`` left alone); empty when none holds a trace."""
        kept = {"_id", "userId", *keep}
        changed = {}
        for key, value in doc.items():
            if key not in kept:
                clean = self.scrubbed(value, strict)
                if clean != value:
                    changed[key] = clean
        return changed
