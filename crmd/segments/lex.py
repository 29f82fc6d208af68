"""Rule text to tokens: a hand-written lexer. Values become typed constants (numbers,
dates, ages, strings); every error names the problem and its 1-based column."""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from crmd.segments.ast import DateValue, Relative
from crmd.segments.fields import EVENT_NAME_RULE, is_event_name
from crmd.store.limits import DATE_RANGE, MAX_AGE_DAYS, MAX_NUMBER, number_in_range, to_utc

MAX_LENGTH = 2000
MAX_DEPTH = 32
MAX_LIST = 200
RELATIVE_UNITS = {"d": 1, "w": 7, "m": 30, "y": 365}
CURRENCY_WORDS = frozenset({"inr", "rs", "rs.", "usd", "eur", "gbp", "rupees", "dollars"})
CURRENCY_SIGNS = frozenset("₹$€£")
KEYWORDS = frozenset(
    {"and", "or", "not", "exists", "in", "contains", "startswith", "endswith", "true", "false"}
)
TEXT_OPS = frozenset({"contains", "startswith", "endswith"})
ORDER_OPS = frozenset({">", ">=", "<", "<="})

# ASCII digits only: str.isdigit() and \d also take superscripts and other scripts' digits.
_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    re.ASCII,
)
_RELATIVE = re.compile(r"(\d{1,6})([dwmy])(?![A-Za-z0-9_])", re.ASCII)
_NUMBER = re.compile(r"\d+(?:_\d+)*(?:\.\d+)?", re.ASCII)
DIGITS = frozenset("0123456789")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*\.?")
_EVENT = re.compile(r"event\.([^\s.()<>=!,&|'\"]*)(\.[A-Za-z0-9_]*)?", re.ASCII | re.IGNORECASE)
_UNIT = re.compile(r"\d+([A-Za-z]+)", re.ASCII)
UNITS_RULE = "days (30d), weeks (4w), months of 30 days (3m) or years of 365 days (1y)"
_SYMBOLS = ("&&", "||", ">=", "<=", "==", "!=", ">", "<", "=", "!", "(", ")", ",")


class RuleError(Exception):
    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class Token(msgspec.Struct, frozen=True):
    kind: str
    """symbol, word, event, number, string, date, relative, end"""
    text: str
    column: int
    end: int
    value: object = None


def tokenize(rule: str, event_properties: bool = False) -> list[Token]:
    """The rule's tokens. With ``event_properties`` (a flow's trigger or goal rule),
    ``event.<property>`` not followed by ``.count`` is a field, the property of the
    event the rule is checked against."""
    if len(rule) > MAX_LENGTH:
        raise RuleError(f"rule is longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    tokens: list[Token] = []
    i = 0
    while i < len(rule):
        char = rule[i]
        if char.isspace():
            i += 1
            continue
        symbol = next((s for s in _SYMBOLS if rule.startswith(s, i)), None)
        if symbol:
            tokens.append(Token("symbol", symbol, i + 1, i + len(symbol)))
            i += len(symbol)
        elif char in "\"'":
            i = _string(rule, i, tokens)
        elif char in CURRENCY_SIGNS:
            i += 1  # a currency sign before a number is decoration
        elif char in DIGITS:
            _after_in(rule, i, tokens)
            i = _number_like(rule, i, tokens)
        elif char == "-" and _counting(tokens):
            raise RuleError(f"an event count cannot be negative (column {i + 1})", i + 1)
        elif rule[i : i + 6].lower() == "event.":
            i = _event(rule, i, tokens, event_properties)
        elif match := _WORD.match(rule, i):
            tokens.append(Token("word", match.group(), i + 1, match.end()))
            i = match.end()
        else:
            raise RuleError(f"unexpected '{char}' at column {i + 1}", i + 1)
    tokens.append(Token("end", "", len(rule) + 1, len(rule) + 1))
    return tokens


def _event(rule: str, start: int, tokens: list[Token], properties: bool = False) -> int:
    """``event.<name>.count``: one token, its value the event's name; with
    ``properties``, ``event.<property>`` otherwise: a word (a field's name)."""
    match = _EVENT.match(rule, start)
    assert match is not None
    name, rest = match.group(1), match.group(2)
    if properties and (rest is None or rest.lower() != ".count"):
        word = _WORD.match(rule, start)
        assert word is not None
        tokens.append(Token("word", word.group(), start + 1, word.end()))
        return word.end()
    at = start + 7  # the name's column
    if not name:
        raise RuleError(f"expected an event's name after 'event.' at column {at}", at)
    if not is_event_name(name):
        shown = name[:70].encode("unicode_escape").decode()
        raise RuleError(
            f"'{shown}' at column {at} is not an event name: it takes {EVENT_NAME_RULE}", at
        )
    after = match.start(2) + 1 if rest is not None else match.end() + 1
    if rest is None or rest.lower() != ".count":
        raise RuleError(
            f"expected '.count' after 'event.{name}' at column {after}: a rule counts an "
            f"event's times (event.{name}.count > 2 in 30d)",
            after,
        )
    tokens.append(Token("event", match.group(), start + 1, match.end(), name))
    return match.end()


def _counting(tokens: list[Token]) -> bool:
    """The token before is the comparison of an event count."""
    return len(tokens) >= 2 and tokens[-2].kind == "event" and tokens[-1].kind == "symbol"


def _after_in(rule: str, start: int, tokens: list[Token]) -> None:
    """A duration after ``in`` (``event.x.count > 2 in 30d``) with a unit crmd does not
    know is named as such, not as an unexpected letter."""
    if not tokens or tokens[-1].kind != "word" or tokens[-1].text.lower() != "in":
        return
    match = _UNIT.match(rule, start)
    if match and match.group(1).lower() not in RELATIVE_UNITS:
        column = match.start(1) + 1
        raise RuleError(
            f"unknown unit '{match.group(1)[:20]}' at column {column}: write a duration in "
            f"{UNITS_RULE}",
            column,
        )


def _string(rule: str, start: int, tokens: list[Token]) -> int:
    quote, i, chars = rule[start], start + 1, []
    while i < len(rule):
        char = rule[i]
        if char == "\\" and i + 1 < len(rule):
            chars.append(rule[i + 1])
            i += 2
            continue
        if char == quote:
            tokens.append(Token("string", rule[start : i + 1], start + 1, i + 1, "".join(chars)))
            return i + 1
        chars.append(char)
        i += 1
    raise RuleError(f"unterminated string starting at column {start + 1}", start + 1)


def _number_like(rule: str, start: int, tokens: list[Token]) -> int:
    if match := _DATE.match(rule, start):
        text = match.group()
        try:
            at = datetime.fromisoformat(text.replace(" ", "T"))
        except ValueError:
            raise RuleError(
                f"'{text}' at column {start + 1} is not a real date", start + 1
            ) from None
        utc = to_utc(at)
        if utc is None:
            raise RuleError(
                f"'{text}' at column {start + 1} lies outside the dates crmd "
                f"supports ({DATE_RANGE})",
                start + 1,
            )
        value = DateValue(at=utc, whole_day=len(text) == 10)
        tokens.append(Token("date", text, start + 1, match.end(), value))
        return match.end()
    if match := _RELATIVE.match(rule, start):
        days = int(match.group(1)) * RELATIVE_UNITS[match.group(2)]
        if days > MAX_AGE_DAYS:
            raise RuleError(
                f"the age '{match.group()}' at column {start + 1} is more than "
                f"{MAX_AGE_DAYS:,} days (1000y)",
                start + 1,
            )
        tokens.append(Token("relative", match.group(), start + 1, match.end(), Relative(days)))
        return match.end()
    match = _NUMBER.match(rule, start)
    assert match is not None
    if match.end() < len(rule) and (rule[match.end()].isalpha() or rule[match.end()] == "_"):
        raise RuleError(
            f"unexpected '{rule[match.end()]}' at column {match.end() + 1}", match.end() + 1
        )
    text = match.group()
    number = float(text.replace("_", ""))
    if not number_in_range(number):
        raise RuleError(
            f"the number at column {start + 1} is larger than {MAX_NUMBER:,}", start + 1
        )
    tokens.append(Token("number", text, start + 1, match.end(), number))
    return match.end()
