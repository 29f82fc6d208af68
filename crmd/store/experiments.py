"""A campaign's experiment as stored: its A/B variants, how they are tested and the
winner picked (``crmd.campaigns.groups``, ``crmd.campaigns.effect``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = ["AbTest", "Variant", "Winner"]


class Variant(msgspec.Struct, frozen=True, kw_only=True):
    """One version of an A/B-tested campaign's message (``crmd.campaigns.groups``)."""

    message: str
    subject: str = ""
    html: str = ""


class AbTest(msgspec.Struct, frozen=True, kw_only=True):
    """How an A/B test is run: ``split`` sends the variants to the whole audience;
    ``winner`` sends them to ``testPercent`` of it, waits ``waitMinutes`` and sends the
    variant best by ``metric`` to the rest."""

    mode: str = "split"
    testPercent: float = 20.0
    waitMinutes: float = 240.0
    metric: str = "clicks"


class Winner(msgspec.Struct, frozen=True, kw_only=True):
    """The variant an A/B test picked, what it was picked by and when."""

    variant: int
    metric: str
    decidedAt: datetime
    figures: list[dict[str, Any]] = []
    """Each variant's recipients and metric with its interval, as they stood."""
    reason: str = ""
