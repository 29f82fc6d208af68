"""Campaign fixtures live in tests/conftest.py (the isolation walk needs them too)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from crmd.campaigns.stats import GROUPS
from crmd.store import documents


def a_campaign(campaign: ObjectId, status: str, **fields: Any) -> dict[str, Any]:
    """A campaign document as crmd stores it (``fields`` set over it), for a test that
    writes one straight into the store."""
    now = datetime.now(UTC)
    new = documents.NewCampaign(
        id=campaign,
        status=status,
        name="c",
        message="Hi",
        rule="spend > 0",
        vendor="v",
        ruleNow=now,
        audienceSize=0,
        createdAt=now,
    )
    return documents.encode(new) | fields


def placed(stats: dict[str, Any]) -> dict[str, int]:
    """A campaign's answered stats by where its messages are (``stats.GROUPS``), without
    what the messages did after (bounced, opened, clicked...) and without the holdout
    (``heldOut``: the campaigns of these tests hold none out)."""
    assert stats["heldOut"] == 0
    return {k: stats[k] for k in GROUPS if k != "heldOut"}
