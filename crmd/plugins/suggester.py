"""What an AI suggester plugin gives crmd.

Each method may return None ("I did not understand"). crmd asks the suggesters in the
configured order (``[ai] order``), bounds every call by a time budget, checks each answer
(a rule must parse; a message may use only the known placeholders) and keeps the first
good one. An exception, a timeout or a bad answer just moves on to the next suggester.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Suggester(Protocol):
    name: str

    async def suggest_messages(
        self, objective: str, intent: str, audience: str, n: int
    ) -> Sequence[str] | None:
        """Up to ``n`` message templates for the objective, using crmd's placeholders
        (``{first_name|there}``, ``{name}``, ``{spend}``...). ``audience`` is the rule of
        the audience, or empty."""

    async def rule_from_text(self, text: str, fields: Sequence[str]) -> str | None:
        """A rule in crmd's rule language for an audience described in words."""

    async def summarize_campaign(
        self, campaign: dict[str, Any], stats: dict[str, int], breakdown: dict[str, Any]
    ) -> str | None:
        """A short plain-language summary of how the campaign went. ``campaign`` has
        its ``name``, ``rule``, ``audienceSize`` and ``status``, its ``effect`` (as
        ``GET /api/v1/campaigns/{id}`` answers it; null before it is sent) and
        ``effectStatement``: crmd's own sentence of that effect, claiming only what its
        95 % interval supports (empty without an effect). Carry that sentence word for
        word; crmd appends it to a summary that does not."""

    async def tag_segment(self, rule: str, stats: dict[str, Any]) -> Sequence[str] | None:
        """Labels for a segment, such as "Win-back" or "High value"."""
