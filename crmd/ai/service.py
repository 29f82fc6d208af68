"""Asking the suggesters: in order, each time-boxed, each answer checked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import structlog

from crmd.campaigns.template import TemplateError, parse_template
from crmd.plugins.suggester import Suggester
from crmd.segments.parse import RuleError, parse_rule

log = structlog.get_logger(__name__)
T = TypeVar("T")
MAX_MESSAGE = 320
MAX_SUMMARY = 1000


class Suggesters:
    def __init__(
        self, suggesters: Sequence[Suggester] = (), order: Sequence[str] = (), budget: float = 10.0
    ) -> None:
        rank = {name: i for i, name in enumerate(order)}
        self.ordered = sorted(suggesters, key=lambda s: rank.get(s.name, len(rank)))
        self.budget = budget

    async def first(
        self,
        question: str,
        ask: Callable[[Suggester], Awaitable[Any]],
        check: Callable[[Any], T | None],
    ) -> tuple[T, str] | None:
        """The first checked answer and who gave it, or None when nobody had one."""
        for suggester in self.ordered:
            try:
                raw = await asyncio.wait_for(ask(suggester), self.budget)
            except Exception as exc:
                log.warning(
                    "ai.suggester_failed",
                    suggester=suggester.name,
                    question=question,
                    error=f"{type(exc).__name__}: {exc}"[:200],
                )
                continue
            answer = check(raw) if raw is not None else None
            if answer is not None:
                return answer, suggester.name
            if raw is not None:
                log.info("ai.answer_discarded", suggester=suggester.name, question=question)
        return None


def valid_messages(raw: Any) -> list[str] | None:
    """Variants that parse as templates (known placeholders only) and fit a message."""
    if not isinstance(raw, list | tuple):
        return None
    good = []
    for variant in raw:
        if not isinstance(variant, str) or not variant.strip() or len(variant) > MAX_MESSAGE:
            continue
        try:
            parse_template(variant)
        except TemplateError:
            continue
        good.append(variant.strip())
    return good or None


def valid_rule(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    try:
        parse_rule(raw)
    except RuleError:
        return None
    return raw.strip()


def valid_summary(raw: Any) -> str | None:
    return raw.strip() if isinstance(raw, str) and 0 < len(raw.strip()) <= MAX_SUMMARY else None


def valid_tags(raw: Any) -> list[str] | None:
    if not isinstance(raw, list | tuple):
        return None
    tags = [t.strip() for t in raw if isinstance(t, str) and 0 < len(t.strip()) <= 40]
    return tags[:10] or None
