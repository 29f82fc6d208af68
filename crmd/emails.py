"""Email addresses as crmd keeps them: one spelling per address.

Two addresses that look the same must be the same key, or one person gets two accounts
(a sign-in) or two customer records (an import). So an address is NFKC-normalised,
trimmed and lower-cased, and then it may hold only what a person types: ASCII letters,
digits and the punctuation addresses allow, and beyond ASCII, letters, marks and digits
that are not default-ignorable (a zero-width space, a Hangul filler, a variation
selector are invisible: an address with one is refused rather than cleaned).
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 254
_SHAPE = re.compile(r"^[^@]+@[^@]+\.[^@]+$")
_ASCII_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.!#$%&'*+/=?^_`{|}~-@")
# Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt): drawn as
# nothing at all, whatever their category says.
_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip


class InvalidEmail(ValueError):
    """``str(err)`` says what is wrong, without echoing invisible characters."""


def _typed_by_a_person(char: str) -> bool:
    if char.isascii():
        return char in _ASCII_ALLOWED
    code = ord(char)
    if any(low <= code <= high for low, high in _IGNORABLE):
        return False
    return unicodedata.category(char)[0] in "LMN"


def normalise_email(raw: str) -> str:
    """The address in its one spelling, or InvalidEmail."""
    text = unicodedata.normalize("NFKC", raw).strip().lower()
    odd = next((c for c in text if not _typed_by_a_person(c)), None)
    if odd is not None:
        what = "a space" if odd.isspace() else "an invisible, control or symbol character"
        raise InvalidEmail(f"contains {what} (U+{ord(odd):04X})")
    if len(text) > MAX_LENGTH:
        raise InvalidEmail(f"is longer than {MAX_LENGTH} characters")
    if not _SHAPE.match(text):
        raise InvalidEmail("is not an email address")
    return text
