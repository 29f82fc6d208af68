"""Rule text to syntax tree: a hand-written lexer and a recursive-descent parser.

Nothing here evaluates or compiles user text: values become typed constants, and every
error names the problem and its 1-based column.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import cast

import msgspec

from crmd.segments.ast import (
    And,
    Compare,
    DateValue,
    Exists,
    InList,
    Node,
    Not,
    Or,
    Relative,
    Value,
)
from crmd.segments.fields import (
    ATTRIBUTE,
    DATE,
    INACTIVE_DAYS,
    NUMBER,
    STRING,
    canonical_name,
    field_type,
    known_fields,
)
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

_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
_RELATIVE = re.compile(r"(\d{1,6})([dwmy])(?![A-Za-z0-9_])")
_NUMBER = re.compile(r"\d+(?:_\d+)*(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*\.?")
_SYMBOLS = ("&&", "||", ">=", "<=", "==", "!=", ">", "<", "=", "!", "(", ")", ",")


class RuleError(Exception):
    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


class Token(msgspec.Struct, frozen=True):
    kind: str
    """symbol, word, number, string, date, relative, end"""
    text: str
    column: int
    end: int
    value: object = None


def tokenize(rule: str) -> list[Token]:
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
        elif char.isdigit():
            i = _number_like(rule, i, tokens)
        elif match := _WORD.match(rule, i):
            tokens.append(Token("word", match.group(), i + 1, match.end()))
            i = match.end()
        else:
            raise RuleError(f"unexpected '{char}' at column {i + 1}", i + 1)
    tokens.append(Token("end", "", len(rule) + 1, len(rule) + 1))
    return tokens


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


class Parser:
    def __init__(self, rule: str) -> None:
        self.tokens = tokenize(rule)
        self.at = 0
        self.depth = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def advance(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def is_word(self, *words: str) -> bool:
        return self.token.kind == "word" and self.token.text.lower() in words

    def is_symbol(self, *symbols: str) -> bool:
        return self.token.kind == "symbol" and self.token.text in symbols

    def unexpected(self, expected: str) -> RuleError:
        token = self.token
        if token.kind == "end":
            return RuleError(
                f"unexpected end of rule at column {token.column}: expected {expected}",
                token.column,
            )
        return RuleError(
            f"unexpected '{token.text}' at column {token.column}: expected {expected}", token.column
        )

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise RuleError("the rule is empty", 1)
        node = self.expression()
        if self.token.kind != "end":
            raise self.unexpected("AND, OR or the end of the rule")
        return node

    def expression(self) -> Node:
        items = [self.conjunction()]
        while self.is_word("or") or self.is_symbol("||"):
            self.advance()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(items)

    def conjunction(self) -> Node:
        items = [self.negation()]
        while self.is_word("and") or self.is_symbol("&&"):
            self.advance()
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(items)

    def negation(self) -> Node:
        if self.is_word("not") or self.is_symbol("!"):
            column = self.advance().column
            return Not(self.nested(self.negation, column))
        return self.primary()

    def nested(self, parse: object, column: int) -> Node:
        """Parse one level deeper; ``column`` is where the level opened."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError(f"the rule nests deeper than {MAX_DEPTH} levels", column)
        node: Node = parse()  # type: ignore[operator]
        self.depth -= 1
        return node

    def primary(self) -> Node:
        if self.is_symbol("("):
            column = self.advance().column
            node = self.nested(self.expression, column)
            if not self.is_symbol(")"):
                raise self.unexpected("')'")
            self.advance()
            return node
        if self.is_word("exists"):
            self.advance()
            name, _ = self.field()
            return Exists(name)
        return self.comparison()

    def field(self) -> tuple[str, str]:
        token = self.token
        if token.kind != "word" or token.text.lower() in KEYWORDS:
            raise self.unexpected("a field name")
        kind = field_type(token.text)
        if kind is None:
            raise RuleError(
                f"unknown field '{token.text}' at column {token.column}; fields "
                f"are: {known_fields()}",
                token.column,
            )
        self.advance()
        return canonical_name(token.text), kind

    def comparison(self) -> Node:
        name, kind = self.field()
        if self.is_word("in"):
            return self.in_list(name, kind)
        op_token = self.token
        if op_token.kind == "symbol" and op_token.text in {">", ">=", "<", "<=", "=", "==", "!="}:
            op = "=" if op_token.text == "==" else op_token.text
        elif self.is_word(*TEXT_OPS):
            op = op_token.text.lower()
        else:
            raise self.unexpected("a comparison (> >= < <= = != contains startswith endswith in)")
        self.advance()
        value_token = self.token
        value = self.value(allow_thousands=True)
        return _typed(name, kind, op, value, value_token)

    def in_list(self, name: str, kind: str) -> Node:
        self.advance()
        if not self.is_symbol("("):
            raise self.unexpected("'(' after in")
        self.advance()
        values: list[Value] = []
        while True:
            value_token = self.token
            value = self.value(allow_thousands=False)
            _typed(name, kind, "=", value, value_token)  # the same checks as '='
            values.append(value)
            if len(values) > MAX_LIST:
                raise RuleError(f"in lists at most {MAX_LIST} values", value_token.column)
            if self.is_symbol(")"):
                self.advance()
                return InList(name, values)
            if not self.is_symbol(","):
                raise self.unexpected("',' or ')'")
            self.advance()

    def value(self, allow_thousands: bool) -> Value:
        token = self.token
        if token.kind == "word" and token.text.lower() in CURRENCY_WORDS:
            self.advance()
            if self.token.kind != "number":
                raise self.unexpected(f"a number after '{token.text}'")
            token = self.token
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            self.advance()
            return token.text.lower() == "true"
        if token.kind in ("string", "date", "relative"):
            self.advance()
            return cast(Value, token.value)
        if token.kind == "number":
            self.advance()
            return self.thousands(token) if allow_thousands else cast(float, token.value)
        raise self.unexpected("a value")

    def thousands(self, first: Token) -> float:
        """``10,000`` outside a list: comma groups of three digits written without
        spaces continue the number."""
        text, end = first.text, first.end
        while (
            self.is_symbol(",")
            and self.token.column == end + 1
            and self.tokens[self.at + 1].kind == "number"
            and self.tokens[self.at + 1].column == end + 2
            and re.fullmatch(r"\d{3}(?:\.\d+)?", self.tokens[self.at + 1].text)
            and "." not in text
            and "_" not in text
            and len(text.split(",")[0]) <= 3
        ):
            self.advance()
            group = self.advance()
            text, end = f"{text},{group.text}", group.end
        number = float(text.replace(",", "").replace("_", ""))
        if not number_in_range(number):
            raise RuleError(
                f"the number at column {first.column} is larger than {MAX_NUMBER:,}", first.column
            )
        return number


def _typed(name: str, kind: str, op: str, value: object, token: Token) -> Node:
    """Check the value against the field's type and build the comparison."""
    column = token.column
    if kind == ATTRIBUTE:
        kind = (
            DATE
            if isinstance(value, DateValue | Relative)
            else "bool"
            if isinstance(value, bool)
            else NUMBER
            if isinstance(value, float)
            else STRING
        )
    if kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, float):
            raise RuleError(
                f"{name} is a number: compare it with a number (column {column})", column
            )
        if op in TEXT_OPS:
            raise RuleError(f"{op} works on text, and {name} is a number", column)
        if name == INACTIVE_DAYS:
            return _inactive_days(op, value, column)
        return Compare(name, op, value)
    if kind == DATE:
        if not isinstance(value, DateValue | Relative):
            raise RuleError(
                f"{name} is a date: compare it with a date like 2024-05-01 or an "
                f"age like 90d (column {column})",
                column,
            )
        if op in TEXT_OPS:
            raise RuleError(f"{op} works on text, and {name} is a date", column)
        return Compare(name, op, value)
    if kind == "bool":
        if op not in ("=", "!="):
            raise RuleError(
                f"true and false can only be compared with = or != (column {column})", column
            )
        return Compare(name, op, value)  # type: ignore[arg-type]
    if not isinstance(value, str):
        raise RuleError(
            f"{name} is text: compare it with a quoted string (column {column})", column
        )
    if op in ORDER_OPS:
        raise RuleError(
            f"{name} is text: use =, !=, contains, startswith, endswith or in (column {column})",
            column,
        )
    return Compare(name, op, value)


_FLIPPED = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "=", "!=": "!="}


def _inactive_days(op: str, value: float, column: int) -> Node:
    """``inactive_days > 90`` is ``lastActive < 90d``: more days inactive is earlier."""
    if value != int(value) or not 0 <= value <= MAX_AGE_DAYS:
        raise RuleError(
            f"inactive_days takes a whole number of days up to {MAX_AGE_DAYS:,} (column {column})",
            column,
        )
    return Compare("lastActive", _FLIPPED[op], Relative(int(value)))


def parse_rule(rule: str) -> Node:
    """The rule's tree, or RuleError with a message and a 1-based column."""
    return Parser(rule).parse()
