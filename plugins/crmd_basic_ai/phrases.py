"""Audience sentences to rules: "haven't shopped in 6 months and spent over 5K" →
``lastActive < 180d AND spend > 5000``. Pattern by pattern, offline and deterministic;
None when nothing in the sentence is understood."""

from __future__ import annotations

import re

NUMBER = (
    r"(?:(?:rs\.?|inr|₹|\$|usd|rupees?)\s*)?(?P<num>\d[\d,]*(?:\.\d+)?|a|an|one|two|"
    r"three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s*(?P<suffix>k|l|lakhs?|"
    r"lacs?|m|mn|million|cr|crores?)?(?:\s*(?:rs\.?|inr|rupees?|dollars?))?"
)
UNIT = r"\s*(?P<unit>days?|weeks?|months?|years?)"
WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
SUFFIXES = {
    "k": 1e3,
    "l": 1e5,
    "lakh": 1e5,
    "lakhs": 1e5,
    "lac": 1e5,
    "lacs": 1e5,
    "m": 1e6,
    "mn": 1e6,
    "million": 1e6,
    "cr": 1e7,
    "crore": 1e7,
    "crores": 1e7,
}
DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}
MORE = r"(?P<op>more than|over|above|greater than|at least|fewer than|less than|under|below|at most|exactly)"  # noqa: E501
OPS = {
    "more than": ">",
    "over": ">",
    "above": ">",
    "greater than": ">",
    "at least": ">=",
    "fewer than": "<",
    "less than": "<",
    "under": "<",
    "below": "<",
    "at most": "<=",
    "exactly": "=",
}

PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "inactive",
        re.compile(
            r"(?:haven'?t|have not|hasn'?t|has not|not|no|didn'?t|did not|never)\s+"
            r"(?:shopped|visited|bought|purchased|ordered|been active|active|come back|been seen|"
            r"seen|purchase|order|visit|activity)\s+(?:in|for|since|during)\s+(?:the\s+)?"
            r"(?:last\s+|past\s+)?" + NUMBER + UNIT
        ),
    ),
    (
        "inactive",
        re.compile(
            r"(?:inactive|dormant|lapsed|away|gone)\s+(?:for|since|in)\s+(?:over\s+|more than\s+)?"
            r"(?:the\s+)?(?:last\s+|past\s+)?" + NUMBER + UNIT
        ),
    ),
    (
        "active",
        re.compile(
            r"(?:active|visited|shopped|purchased|bought|ordered|seen)\s+(?:in|within|during)\s+"
            r"(?:the\s+)?(?:last|past)\s+" + NUMBER + UNIT
        ),
    ),
    (
        "spend",
        re.compile(
            r"(?:spent|spend|spending|spends|purchases?|lifetime value|total spend|bought)\s+"
            r"(?:of\s+)?" + MORE + r"\s+" + NUMBER
        ),
    ),
    (
        "spend_or_more",
        re.compile(r"(?:spent|spend|spends)\s+" + NUMBER + r"\s+or\s+(?P<dir>more|less)"),
    ),
    ("visits", re.compile(MORE + r"\s+" + NUMBER + r"\s+visits")),
    ("visits", re.compile(r"visited\s+" + MORE + r"\s+" + NUMBER + r"\s+times")),
    ("orders", re.compile(MORE + r"\s+" + NUMBER + r"\s+(?:orders|purchases)")),
    ("orders", re.compile(r"ordered\s+" + MORE + r"\s+" + NUMBER + r"\s+times")),
]
CITY = r"[A-Z][a-zA-Z]+(?:\s[A-Z][a-zA-Z]+)?"
LOCATION = re.compile(
    r"\b(?:in|from|living in|based in|located in|at)\s+(?P<cities>"
    + CITY
    + r"(?:\s*(?:,|\bor\b|\band\b)\s*"
    + CITY
    + r")*)"
)
NOT_CITIES = frozenset({"I", "The", "Last", "Past", "Customers", "People", "Users", "All"})


def number(match: re.Match[str]) -> float:
    raw = match.group("num").lower()
    value = float(WORDS[raw]) if raw in WORDS else float(raw.replace(",", ""))
    suffix = (match.group("suffix") or "").lower()
    return value * SUFFIXES.get(suffix, 1)


def days(match: re.Match[str]) -> int:
    unit = match.group("unit").lower().rstrip("s")
    return int(number(match) * DAYS[unit])


def fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def clause(kind: str, match: re.Match[str]) -> str:
    if kind == "inactive":
        return f"lastActive < {days(match)}d"
    if kind == "active":
        return f"lastActive > {days(match)}d"
    if kind == "spend_or_more":
        return f"spend {'>=' if match.group('dir') == 'more' else '<='} {fmt(number(match))}"
    field = {"spend": "spend", "visits": "visits", "orders": "orderCount"}[kind]
    return f"{field} {OPS[match.group('op')]} {fmt(number(match))}"


def rule_from_sentence(text: str) -> str | None:
    """The rule for the sentence, or None. Clauses keep the sentence's order."""
    lowered = text.lower()
    found: list[tuple[int, str]] = []
    taken: list[range] = []
    for kind, pattern in PATTERNS:
        for match in pattern.finditer(lowered):
            span = range(match.start(), match.end())
            if any(span.start < t.stop and t.start < span.stop for t in taken):
                continue
            taken.append(span)
            found.append((match.start(), clause(kind, match)))
    for match in LOCATION.finditer(text):
        cities = [
            c.strip()
            for c in re.split(r"\s*(?:,|\bor\b|\band\b)\s*", match.group("cities"))
            if c.strip()
        ]
        cities = [c for c in cities if c.split()[0] not in NOT_CITIES]
        if not cities:
            continue
        quoted = ", ".join(f'"{c}"' for c in cities)
        rule = f"location = {quoted}" if len(cities) == 1 else f"location in ({quoted})"
        found.append((match.start(), rule))
    if not found:
        return None
    return " AND ".join(rule for _, rule in sorted(found))
