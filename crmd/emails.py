"""Email addresses as crmd keeps them: one spelling per address.

Two addresses that look the same must be the same key, or one person gets two accounts
(a sign-in) or two customer records (an import). So an address is NFKC-normalised,
trimmed and lower-cased, and one that still holds a control, format or other invisible
character (a zero-width space, a NUL, a newline) is refused rather than cleaned: it
was not typed by a person.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 254
_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


class InvalidEmail(ValueError):
    """``str(err)`` says what is wrong, without echoing invisible characters."""


def normalise_email(raw: str) -> str:
    """The address in its one spelling, or InvalidEmail."""
    text = unicodedata.normalize("NFKC", raw).strip().lower()
    hidden = next((c for c in text if unicodedata.category(c) in _INVISIBLE), None)
    if hidden is not None:
        raise InvalidEmail(f"contains an invisible or control character (U+{ord(hidden):04X})")
    if any(c.isspace() for c in text):
        raise InvalidEmail("contains a space")
    if len(text) > MAX_LENGTH:
        raise InvalidEmail(f"is longer than {MAX_LENGTH} characters")
    if not _SHAPE.match(text):
        raise InvalidEmail("is not an email address")
    return text
