"""Asking the suggesters: in order, each time-boxed, each answer checked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
import structlog

from crmd.campaigns import stats
from crmd.campaigns.service import campaign_view
from crmd.campaigns.template import TemplateError, parse_template
from crmd.campaigns.wording import effect_statement, overclaims
from crmd.errors import Unprocessable
from crmd.messages import REACHED
from crmd.plugins.suggester import Suggester
from crmd.segments.fields import known_fields
from crmd.segments.parse import RuleError, parse_rule
from crmd.store.documents import Campaign
from crmd.store.tenant import TenantStore

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
        self.last: dict[str, tuple[bool, str, float]] = {}
        """Each suggester's last answer in this process: (answered, what, when)."""

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
                error = f"{type(exc).__name__}: {exc}"[:200]
                self.last[suggester.name] = (False, f"{question}: {error}", time.time())
                log.warning(
                    "ai.suggester_failed",
                    suggester=suggester.name,
                    question=question,
                    error=f"{type(exc).__name__}: {exc}"[:200],
                )
                continue
            answer = check(raw) if raw is not None else None
            said = "answered" if answer is not None else "had no answer"
            self.last[suggester.name] = (True, f"{question}: {said}", time.time())
            if answer is not None:
                return answer, suggester.name
            if raw is not None:
                log.info("ai.answer_discarded", suggester=suggester.name, question=question)
        return None

    async def messages(
        self, objective: str, intent: str, rule: str, n: int
    ) -> tuple[list[str], str]:
        """Message templates for the objective and audience, and who wrote them; 422
        when no suggester could."""
        answer = await self.first(
            "messages",
            lambda s: s.suggest_messages(objective, intent, rule, n),
            valid_messages,
        )
        if answer is None:
            raise Unprocessable("no suggester could write messages for this", code="not_understood")
        return answer

    async def rule(self, text: str) -> tuple[str, str]:
        """A rule for an audience described in words, and who wrote it; 422 when no
        suggester understood."""
        fields = [f.strip() for f in known_fields().split(",")]
        answer = await self.first("rule", lambda s: s.rule_from_text(text, fields), valid_rule)
        if answer is None:
            raise Unprocessable(
                f"no suggester understood {text[:100]!r}; try words like 'spent over 5000', "
                "'inactive for 3 months', 'in Delhi'",
                code="not_understood",
            )
        return answer


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


BANDS = [
    (0, 1_000, "under 1,000"),
    (1_000, 10_000, "1,000-10,000"),
    (10_000, float("inf"), "10,000+"),
]


async def spend_bands(store: TenantStore, campaign_id: str) -> dict[str, Any]:
    """Delivery by the recipients' spend band, for the summary's best and worst."""
    totals = {label: 0 for _, _, label in BANDS}
    reached = {label: 0 for _, _, label in BANDS}
    logs = store["communication_log"].find(
        {"campaignId": campaign_id}, projection={"customerId": 1, "status": 1}
    )
    batch: list[dict[str, Any]] = []

    async def tally() -> None:
        ids = [d["customerId"] for d in batch]
        spend = {
            c["_id"]: c.get("spend", 0)
            for c in await store["customers"].by_ids(ids, projection={"spend": 1})
        }
        for log in batch:
            value = spend.get(log["customerId"], 0) or 0
            label = next(lab for low, high, lab in BANDS if low <= value < high)
            totals[label] += 1
            if log["status"] in REACHED:
                reached[label] += 1

    async for log in logs:
        batch.append(log)
        if len(batch) >= 1000:
            await tally()
            batch = []
    if batch:
        await tally()
    bands = [
        {
            "band": label,
            "total": totals[label],
            "reached": reached[label],
            "rate": reached[label] / totals[label] if totals[label] else 0.0,
        }
        for _, _, label in BANDS
    ]
    return {"bands": bands}


async def campaign_summary(
    store: TenantStore, suggesters: Suggesters, campaign: Campaign
) -> tuple[str, str]:
    """How the campaign went, in words, and who wrote them; 422 when nobody could.

    The suggesters get the campaign's ``effect`` (as the API answers it) and
    ``effectStatement``, the one sentence crmd itself writes of it
    (``crmd.campaigns.wording``). An answer that does not carry that sentence word for
    word gets it appended: whatever a model writes, the effect it states is the one the
    interval supports."""
    counted = {k: campaign.stats.get(k, 0) for k in stats.GROUPS}
    breakdown = await spend_bands(store, str(campaign.id))
    found = campaign_view(campaign).get("effect")
    effect = None if found is None else msgspec.to_builtins(found)
    statement = effect_statement(effect)
    view = {
        "name": campaign.name,
        "rule": campaign.rule,
        "audienceSize": campaign.audienceSize,
        "status": campaign.status,
        "effect": effect,
        "effectStatement": statement,
    }

    answer = await suggesters.first(
        "summary",
        lambda s: s.summarize_campaign(view, counted, breakdown),
        summary_check(effect, statement),
    )
    if answer is None:
        raise Unprocessable("no suggester could summarise this campaign", code="not_understood")
    return with_statement(answer[0], statement), answer[1]


def summary_check(effect: Any, statement: str) -> Callable[[Any], str | None]:
    """A summary's check: ``valid_summary``, and no claim of an effect the interval does
    not support (``wording.overclaims``). A refused answer passes the question to the
    next suggester (basic_ai last, whose words are crmd's own)."""

    def checked(raw: Any) -> str | None:
        text = valid_summary(raw)
        return None if text is None or overclaims(text, effect, statement) else text

    return checked


def with_statement(text: str, statement: str) -> str:
    """The summary, ending with the effect's statement unless it carries it already."""
    if not statement or statement in " ".join(text.split()):
        return text
    return f"{text.rstrip()} {statement}"
