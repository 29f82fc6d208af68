"""Tokens to syntax tree: a recursive-descent parser over ``crmd.segments.lex``.

Nothing here evaluates or compiles user text: values become typed constants, and every
error names the problem and its 1-based column.
"""

from __future__ import annotations

import re
from typing import cast

from crmd.segments.ast import (
    MAX_EVENT_COUNT,
    And,
    Compare,
    DateValue,
    EventCount,
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
    CUSTOMERS,
    DATE,
    INACTIVE_DAYS,
    NUMBER,
    STRING,
    FieldSet,
)
from crmd.segments.lex import (
    CURRENCY_WORDS,
    KEYWORDS,
    MAX_DEPTH,
    MAX_LIST,
    ORDER_OPS,
    TEXT_OPS,
    RuleError,
    Token,
    tokenize,
)
from crmd.store.limits import MAX_AGE_DAYS, MAX_NUMBER, number_in_range

__all__ = ["RuleError", "parse_rule"]

COUNT_OPS = frozenset({">", ">=", "<", "<=", "=", "==", "!="})


class Parser:
    def __init__(self, rule: str, fields: FieldSet = CUSTOMERS) -> None:
        self.fields = fields
        self.tokens = tokenize(rule, event_properties=fields.events)
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
        if self.token.kind == "event":
            return self.event_count()
        return self.comparison()

    def event_count(self) -> Node:
        """``event.<name>.count <op> <count> [in <duration>]``."""
        name = str(self.advance().value)
        op_token = self.token
        if op_token.kind != "symbol" or op_token.text not in COUNT_OPS:
            raise self.unexpected("a comparison (> >= < <= = !=) after an event count")
        op = "=" if op_token.text == "==" else op_token.text
        self.advance()
        count_token = self.token
        if count_token.kind != "number":
            raise self.unexpected("a whole number of times")
        count = cast(float, count_token.value)
        column = count_token.column
        if count != int(count):
            raise RuleError(f"an event count is a whole number (column {column})", column)
        if count > MAX_EVENT_COUNT:
            raise RuleError(
                f"an event count goes up to {MAX_EVENT_COUNT} (column {column}): crmd keeps "
                f"each customer's last {MAX_EVENT_COUNT + 1} times of an event",
                column,
            )
        self.advance()
        if not self.is_word("in"):
            return EventCount(name, op, int(count))
        self.advance()
        window = self.token
        if window.kind != "relative":
            raise self.unexpected("a duration after in, like 30d, 4w, 3m or 1y")
        self.advance()
        days = cast(Relative, window.value).days
        if days < 1:
            raise RuleError(
                f"the window at column {window.column} must be at least a day", window.column
            )
        return EventCount(name, op, int(count), days)

    def field(self) -> tuple[str, str]:
        token = self.token
        if token.kind != "word" or token.text.lower() in KEYWORDS:
            raise self.unexpected("a field name")
        kind = self.fields.type_of(token.text)
        if kind is None:
            raise RuleError(
                f"unknown field '{token.text}' at column {token.column}; fields "
                f"are: {self.fields.listing()}",
                token.column,
            )
        self.advance()
        return self.fields.canonical(token.text), kind

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


def parse_rule(rule: str, fields: FieldSet = CUSTOMERS) -> Node:
    """The rule's tree, or RuleError with a message and a 1-based column."""
    return Parser(rule, fields).parse()
