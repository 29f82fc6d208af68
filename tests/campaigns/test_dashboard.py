"""The dashboard and the lists read tallies and ranges: a page costs a page, whatever the
number of records, and the figures are exact."""

from __future__ import annotations

from typing import Any

from crmd.app import Crmd
from crmd.store.numbering import COUNTERS
from tests.campaigns.test_delivery_loop import load, start_campaign, wait_status
from tests.telemetry.test_mongo_costs import charged


async def statuses_logged(system: Crmd) -> dict[str, int]:
    found: dict[str, int] = {}
    async for log in system.db.communication_log.find({}, projection={"status": 1}):
        found[log["status"]] = found.get(log["status"], 0) + 1
    return found


async def test_the_summary_is_one_read_of_the_tallies_and_follows_the_receipts(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "Hello", "Hi {first_name}", "visits < 2")
    await wait_status(client, auth, campaign["id"], "completed")
    route = "GET /api/v1/dashboard-summary"
    before, _ = charged(delivering, route)
    summary = await (await client.get("/api/v1/dashboard-summary", headers=auth)).json()
    after, _ = charged(delivering, route)
    spent = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}
    assert spent.pop(("find", "users"), 1) == 1  # who (read at most every few seconds)
    # In which workspace, with which role: read on every request, so that a member
    # removed or a role lowered is refused on their very next one.
    assert spent.pop(("find", "memberships")) == 1
    assert spent == {("find", COUNTERS): 1}  # and the tally
    assert summary["messages"] == await statuses_logged(delivering)
    assert summary["customers"] == 400 and summary["campaigns"] == 1


async def test_a_tally_from_before_statuses_were_kept_is_counted_once_from_the_logs(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    campaign = await start_campaign(client, auth, "Hello", "Hi", "visits < 2")
    await wait_status(client, auth, campaign["id"], "completed")
    db = delivering.db
    # As an older crmd left them: no statuses on the tally or on the campaign.
    await db[COUNTERS].update_many(
        {"kind": "tally"}, {"$unset": {"byStatus": "", "statusesCounted": ""}}
    )
    await db.campaigns.update_many({}, {"$unset": {"byStatus": ""}})
    summary = await (await client.get("/api/v1/dashboard-summary", headers=auth)).json()
    assert summary["messages"] == await statuses_logged(delivering)
    assert (await db.campaigns.find_one({}))["byStatus"] == summary["messages"]


async def test_campaigns_are_listed_a_range_at_a_time_with_the_tally_as_total(
    client: Any, auth: Any, system: Crmd
):
    for n in range(7):
        made = await client.post(
            "/api/v1/campaigns",
            headers=auth,
            json={"name": f"C{n}", "message": "Hi", "rule": "spend > 1", "draft": True},
        )
        assert made.status == 201
    route = "GET /api/v1/campaigns"
    before, _ = charged(system, route)
    names, cursor = [], ""
    while True:
        page = await (await client.get(f"/api/v1/campaigns?limit=3{cursor}", headers=auth)).json()
        assert page["total"] == 7
        names += [c["name"] for c in page["items"]]
        if page["cursor"] is None:
            break
        cursor = f"&cursor={page['cursor']}"
    assert names == [f"C{n}" for n in reversed(range(7))]
    after, _ = charged(system, route)
    assert not any(command in ("count", "aggregate") for command, _ in after)
    assert after[("find", "campaigns")] - before.get(("find", "campaigns"), 0) == 3
    skipped = await (await client.get("/api/v1/campaigns?limit=2&offset=5", headers=auth)).json()
    assert [c["name"] for c in skipped["items"]] == ["C1", "C0"]


async def test_segments_and_uploads_lists_total_their_tallies(
    client: Any, auth: Any, system: Crmd, ingesting: Any
):
    await load(client, auth)
    for n in range(3):
        made = await client.post("/api/v1/segments", headers=auth, json={"rule": f"visits > {n}"})
        assert made.status == 201
    first = (await (await client.get("/api/v1/segments", headers=auth)).json())["items"][0]
    assert (await client.delete(f"/api/v1/segments/{first['id']}", headers=auth)).status == 204
    segments = await (await client.get("/api/v1/segments?limit=1", headers=auth)).json()
    assert segments["total"] == 2 and len(segments["items"]) == 1
    uploads = await (await client.get("/api/v1/uploads", headers=auth)).json()
    assert uploads["total"] == 1 == len(uploads["items"])
    for route in ("GET /api/v1/segments", "GET /api/v1/uploads"):
        commands, _ = charged(system, route)
        assert not any(command in ("count", "aggregate") for command, _ in commands), route
