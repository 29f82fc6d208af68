"""A campaign's life can be read in the log: a line for each step, with its counts and
how long it has taken."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from crmd.app import Crmd
from tests.campaigns.conftest import placed
from tests.campaigns.test_delivery_loop import load, start_campaign, wait_status

RULE = "spend > 10000 AND visits < 3"


def steps(logs: list[dict[str, Any]], campaign: str) -> dict[str, dict[str, Any]]:
    return {
        line["event"]: line
        for line in logs
        if line["event"].startswith("campaign.") and line.get("campaign_id") == campaign
    }


async def test_each_step_of_a_campaign_is_a_line_with_its_counts(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    with capture_logs() as logs:
        campaign = await start_campaign(client, auth, "c", "Hi {first_name}", RULE)
        done = await wait_status(client, auth, campaign["id"], "completed")
        # The line is written just after the status it reports: on a loaded machine the
        # answer may come between the two.
        for _ in range(100):
            if "campaign.completed" in steps(logs, campaign["id"]):
                break
            await asyncio.sleep(0.1)
    seen = steps(logs, campaign["id"])
    assert seen["campaign.created"]["status"] == "queued"
    for step in ("created", "planning", "planned", "sent", "completed"):
        assert seen[f"campaign.{step}"]["log_level"] == "info", seen
    assert seen["campaign.planned"]["audience"] == 100
    completed = seen["campaign.completed"]
    assert completed["status"] == "completed"
    # Its final figures, as the campaign answers them; none before (they would lag).
    figures = {k: v for k, v in placed(done["stats"]).items() if v}
    assert {k: completed[k] for k in figures} == figures and "pending" not in completed
    assert completed.get("sent", 0) + completed.get("failed", 0) == 100 == done["audienceSize"]
    assert "sent" not in seen["campaign.planned"] and "sent" not in seen["campaign.sent"]
    assert 0 < completed["seconds_since_planned"] <= completed["seconds"]
    # One line a step: a planner taking over (planning again) is not a step.
    lines = [e["event"] for e in logs if e.get("campaign_id") == campaign["id"]]
    assert lines.count("campaign.planning") == 1 and lines.count("campaign.completed") == 1


async def test_pause_resume_and_cancel_are_lines_too(client: Any, auth: Any, delivering: Crmd):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "c", "Hi {first_name}", RULE)
    with capture_logs() as logs:
        for action in ("pause", "resume", "cancel"):
            answer = await client.post(f"/api/v1/campaigns/{campaign['id']}/{action}", headers=auth)
            assert answer.status == 200, await answer.text()
    seen = steps(logs, campaign["id"])
    assert {"campaign.paused", "campaign.resumed", "campaign.cancelled"} <= seen.keys(), seen
    assert seen["campaign.cancelled"]["status"] == "cancelled"
