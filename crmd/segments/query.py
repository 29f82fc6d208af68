"""A rule as a customers query: parsed, compiled at one moment, or refused with 422.

Everything that turns rule text into a MongoDB filter (the API, campaign planning)
goes through here, so they all agree on the moment "now" is and on the error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crmd.errors import CrmdError
from crmd.segments.compile import compile_rule
from crmd.segments.parse import RuleError, parse_rule


class InvalidRule(CrmdError):
    status, code = 422, "invalid_rule"

    def __init__(self, error: RuleError) -> None:
        super().__init__(error.message, details={"column": error.column})
        self.column = error.column

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["error"]["column"] = self.column
        return body


def rule_now() -> datetime:
    """Now, to the millisecond: what MongoDB stores, so Python and the database agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def rule_filter(rule: str, now: datetime | None = None) -> dict[str, Any]:
    """The customers filter for ``rule``, or InvalidRule (422) naming the column."""
    try:
        return compile_rule(parse_rule(rule), now or rule_now())
    except RuleError as exc:
        raise InvalidRule(exc) from None
