"""crmd's offline AI: deterministic, no key, always on, and the last to be asked.

Message variants per intent, rules from common audience sentences, a numeric campaign
summary (led by crmd's statement of the campaign's effect), and tags read off a rule.
Settings: none (``enabled = false`` turns it off).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from crmd.plugins import (
    And,
    Compare,
    InList,
    Node,
    Not,
    Or,
    PluginContext,
    Relative,
    RuleError,
    hookimpl,
    parse_rule,
)
from crmd_basic_ai.phrases import rule_from_sentence

NAME = "basic_ai"

TEMPLATES: dict[str, list[str]] = {
    "win-back": [
        "Hi {first_name|there}, we miss you! Come back this week for 15% off your next order.",
        "{first_name|Hey}, it's been a while. Here's a welcome-back treat: 10% off, just for you.",
        "Hi {first_name|there}, your favourites are waiting. Drop by and enjoy a little something on us.",  # noqa: E501
    ],
    "high value": [
        "Hi {first_name|there}, thank you for being one of our best customers. Enjoy early access to our new collection.",  # noqa: E501
        "{first_name|Dear customer}, as a valued member you get an exclusive 20% off this weekend.",
        "Hi {first_name|there}, a VIP surprise is waiting for you in store. See you soon!",
    ],
    "new arrival": [
        "Hi {first_name|there}, new arrivals just landed! Be the first to see them.",
        "{first_name|Hey}, fresh styles are in. Come take a look before they're gone.",
        "Hi {first_name|there}, something new is here and we think you'll love it.",
    ],
    "festive offer": [
        "Hi {first_name|there}, celebrate with us! Festive offers up to 30% off, this week only.",
        "{first_name|Hey}, the festive sale is on. Treat yourself and your loved ones.",
        "Happy holidays, {first_name|there}! Enjoy a festive gift with your next purchase.",
    ],
    "reminder": [
        "Hi {first_name|there}, just a reminder: your saved items are still waiting for you.",
        "{first_name|Hey}, don't miss out. Your offer ends soon.",
        "Hi {first_name|there}, a quick nudge: come back and finish where you left off.",
    ],
    "generic": [
        "Hi {first_name|there}, we have something special for you. Visit us soon!",
        "{first_name|Hey}, thanks for being with us. Here's a little treat on your next visit.",
        "Hi {first_name|there}, good things are waiting for you. See you soon!",
    ],
}
ALIASES = {
    "winback": "win-back",
    "win back": "win-back",
    "reactivation": "win-back",
    "vip": "high value",
    "high-value": "high value",
    "loyalty": "high value",
    "launch": "new arrival",
    "new-arrival": "new arrival",
    "new arrivals": "new arrival",
    "festive": "festive offer",
    "sale": "festive offer",
    "festival": "festive offer",
    "cart": "reminder",
    "abandoned cart": "reminder",
}


def intent_key(intent: str, objective: str) -> str:
    for text in (intent, objective):
        lowered = text.strip().lower()
        if lowered in TEMPLATES:
            return lowered
        if lowered in ALIASES:
            return ALIASES[lowered]
        for word, key in ALIASES.items():
            if word in lowered:
                return key
        for key in TEMPLATES:
            if key in lowered:
                return key
    return "generic"


def comparisons(node: Node) -> list[Compare | InList]:
    if isinstance(node, And | Or):
        return [c for item in node.items for c in comparisons(item)]
    if isinstance(node, Not):
        return []
    if isinstance(node, Compare | InList):
        return [node]
    return []


def tags_for(rule: str, audience: int | None) -> list[str]:
    try:
        tree = parse_rule(rule)
    except RuleError:
        return []
    tags: list[str] = []
    for c in comparisons(tree):
        value = getattr(c, "value", None)
        op = getattr(c, "op", "")
        if c.field == "lastActive" and op in ("<", "<=") and isinstance(value, Relative):
            tags.append("Win-back")
        elif c.field in ("lastActive", "lastOrderAt") and op in (">", ">="):
            tags.append("Recently active")
        elif (
            c.field in ("spend", "orderTotal")
            and op in (">", ">=")
            and isinstance(value, float)
            and value >= 10_000
        ):
            tags.append("High value")
        elif c.field == "spend" and op in ("<", "<="):
            tags.append("Low spend")
        elif c.field == "visits" and op in ("<", "<="):
            tags.append("Low engagement")
        elif c.field == "visits" and op in (">", ">="):
            tags.append("Frequent visitors")
        elif c.field == "orderCount" and op in (">", ">="):
            tags.append("Loyal")
        elif c.field == "location":
            tags.append("Regional")
    if audience is not None and audience < 100:
        tags.append("Niche")
    return list(dict.fromkeys(tags)) or ["General"]


def summary_for(
    stats: dict[str, int],
    breakdown: dict[str, Any],
    effect_statement: str = "",
    measured: bool = True,
) -> str:
    """The effect first, in crmd's own statement word for word (it claims only what the
    interval supports), then the delivery in the stats' own words: SENT is "sent"
    (handed over), not "delivered". Without a holdout (not ``measured``) the delivery
    leads and the statement (attributed revenue, no effect) follows."""
    counts = {name: stats.get(name, 0) for name in ("sent", "delivered", "failed")}
    for extra in ("pending", "unknown", "cancelled"):
        if stats.get(extra):
            counts[extra] = stats[extra]
    total = sum(counts.values())
    reached = counts["sent"] + counts["delivered"]
    share = reached / total * 100 if total else 0.0
    parts = ", ".join(f"{n:,} {name}" for name, n in counts.items())
    text = f"{total:,} recipients: {parts} ({share:.1f}% sent or delivered)."
    bands = [b for b in breakdown.get("bands", []) if b.get("total")]
    if len(bands) >= 2:
        best = max(bands, key=lambda b: b["rate"])
        worst = min(bands, key=lambda b: b["rate"])
        text += (
            f" Best: spend {best['band']} ({best['rate'] * 100:.1f}% sent or delivered);"
            f" worst: spend {worst['band']} ({worst['rate'] * 100:.1f}%)."
        )
    if not effect_statement:
        return text
    return f"{effect_statement} {text}" if measured else f"{text} {effect_statement}"


class BasicSuggester:
    name = NAME

    async def suggest_messages(
        self, objective: str, intent: str, audience: str, n: int
    ) -> Sequence[str]:
        return TEMPLATES[intent_key(intent, objective)][: max(1, n)]

    async def rule_from_text(self, text: str, fields: Sequence[str]) -> str | None:
        return rule_from_sentence(text)

    async def summarize_campaign(
        self, campaign: dict[str, Any], stats: dict[str, int], breakdown: dict[str, Any]
    ) -> str:
        effect = campaign.get("effect") or {}
        measured = bool((effect.get("heldOut") or {}).get("customers"))
        return summary_for(stats, breakdown, str(campaign.get("effectStatement") or ""), measured)

    async def tag_segment(self, rule: str, stats: dict[str, Any]) -> Sequence[str]:
        return tags_for(rule, stats.get("audienceSize"))


@hookimpl
def crmd_suggesters(context: PluginContext) -> list[BasicSuggester]:
    context.settings(Settings)  # it has none: an unknown key is a mistake to report
    return [BasicSuggester()]


class Settings(msgspec.Struct, forbid_unknown_fields=True):
    """``[plugins.basic_ai]`` takes no settings but ``enabled``."""
