"""Email addresses as crmd keeps them: one spelling per address, one set of rules.

Every place crmd reads an address (a CSV row, the suppression list and its CSV, a test
send, dev login, Google sign-in, the console's forms, ``crmd token``, ``[auth]
allowed_emails``) goes through ``normalise_email``, so an address one of them keeps,
every other keeps too, spelt the same.

Two addresses that look the same must be the same key, or one person gets two accounts
(a sign-in) or two customer records (an import). So an address is NFKC-normalised,
trimmed of spaces and lower-cased, and then it may hold only what a person types: ASCII
letters, digits and the punctuation addresses allow, and beyond ASCII, letters, marks and
digits that are not default-ignorable (a zero-width space, a Hangul filler, a variation
selector are invisible: an address with one is refused rather than cleaned). A line
break, a tab or any other control character is refused wherever it is, at either end
too: only spaces are trimmed.

Its shape is one a mail server delivers to (RFC 5321, and RFC 6531 beyond ASCII): before
the ``@`` a dot-atom (no dot at either end, none right after another) of at most 64
bytes; after it a domain of two or more labels of letters, digits and hyphens, none
starting or ending with a hyphen, none longer than 63 characters, with no dot at the
end; at most 254 bytes in all (UTF-8). Quoted local parts (``"a b"@x.co``) and address
literals (``a@[192.0.2.1]``) are not kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

MAX_LENGTH = 254
"""Bytes in all: RFC 5321's 256-byte path, less its angle brackets."""
MAX_LOCAL = 64
"""Bytes before the ``@`` (RFC 5321)."""
MAX_LABEL = 63
"""Characters in one label of the domain (RFC 1035)."""

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


def _shape(beyond_ascii: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The local part, one label and the whole address, as patterns over text whose
    characters already passed ``_typed_by_a_person``: ``beyond_ascii`` is the range of
    non-ASCII characters allowed where ASCII letters are (none, for the fast lane)."""
    atom = rf"[a-z0-9!#$%&'*+/=?^_`{{|}}~\-{beyond_ascii}]+"
    local = rf"{atom}(?:\.{atom})*"
    end = rf"[a-z0-9{beyond_ascii}]"
    label = rf"{end}(?:[a-z0-9\-{beyond_ascii}]{{0,{MAX_LABEL - 2}}}{end})?"
    # The look-ahead counts characters: bytes for ASCII, which is all the fast lane
    # takes; normalise_email counts the bytes of the rest itself.
    address = rf"(?=[^@]{{1,{MAX_LOCAL}}}@)(?:{local})@{label}(?:\.{label})+"
    return re.compile(local), re.compile(label), re.compile(address)


_LOCAL, _LABEL, _ADDRESS = _shape("\u0080-\U0010ffff")
_, _, _ASCII_ADDRESS = _shape("")


class InvalidEmail(ValueError):
    """``str(err)`` says what is wrong, without echoing invisible characters."""


def _typed_by_a_person(char: str) -> bool:
    if char.isascii():
        return char in _ASCII_ALLOWED
    code = ord(char)
    if any(low <= code <= high for low, high in _IGNORABLE):
        return False
    return unicodedata.category(char)[0] in "LMN"


def _unexpected(char: str) -> str:
    if unicodedata.category(char) == "Cc":
        what = "a line break" if char in "\n\r\x85" else "a control character"
    elif char.isspace():
        what = "a space"
    else:
        what = "an invisible, control or symbol character"
    return f"contains {what} (U+{ord(char):04X})"


def normalise_email(raw: str) -> str:
    """The address in its one spelling, or InvalidEmail saying what is wrong with it.

    Only spaces around it are trimmed (what NFKC makes a space: a no-break space too).
    ``str.strip()`` would also drop a final line break, and ``a@x.com\n`` would sign in
    as ``a@x.com``: a value with a control character in it did not come from a person
    typing an address, so it is refused, as it is anywhere else in the address."""
    text = unicodedata.normalize("NFKC", raw).strip(" ").lower()
    odd = next((c for c in text if not _typed_by_a_person(c)), None)
    if odd is not None:
        raise InvalidEmail(_unexpected(odd))
    if len(text.encode()) > MAX_LENGTH:
        raise InvalidEmail(f"is longer than {MAX_LENGTH} bytes")
    local = text.partition("@")[0]
    if _ADDRESS.fullmatch(text) is None or len(local.encode()) > MAX_LOCAL:
        raise InvalidEmail(_what_is_wrong(text))
    return text


def plain_addresses(values: Sequence[str]) -> bool:
    """Whether every value is an ASCII address that ``normalise_email`` keeps as it is
    (trimmed and lower-cased already): the import's fast lane asks this of a column at
    a time, in loops that run in C; a column it says no to goes the precise way."""
    if not values or max(map(len, values)) > MAX_LENGTH:
        return False
    return all(map(_ASCII_ADDRESS.fullmatch, values))


_NOT = "is not an email address"


def _what_is_wrong(text: str) -> str:
    """Which rule of the address's shape (``_shape``) it breaks, in words."""
    local, at, domain = text.partition("@")
    if not at or "@" in domain or not local or not domain:
        return _NOT
    if len(local.encode()) > MAX_LOCAL:
        return f"has more than {MAX_LOCAL} bytes before the @"
    if _LOCAL.fullmatch(local) is None:
        return f"{_NOT}: a dot may not start or end the part before the @, or follow a dot"
    labels = domain.split(".")
    if len(labels) < 2:
        return f"{_NOT}: its domain has no dot"
    if not labels[-1]:
        return f"{_NOT}: its domain ends with a dot"
    for label in labels:
        if not label:
            return f"{_NOT}: its domain starts with a dot or has two in a row"
        if len(label) > MAX_LABEL:
            return f"{_NOT}: a part of its domain is longer than {MAX_LABEL} characters"
        if label.startswith("-") or label.endswith("-"):
            return f"{_NOT}: a part of its domain starts or ends with a hyphen"
        if _LABEL.fullmatch(label) is None:
            return f"{_NOT}: its domain may hold only letters, digits, hyphens and dots"
    return _NOT
