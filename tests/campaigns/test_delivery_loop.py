"""A campaign from creation to completed, through the dummy vendor's signed callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

from crmd.app import Crmd
from tests.campaigns.conftest import placed
from tests.ingest.conftest import upload, wait_done

ROWS = "customer_external_id,name,email,spend,visits\n" + "".join(
    f"K{i},Person{i} Surname,p{i}@x.io,{20000 if i % 2 else 500},{i % 4}\n" for i in range(400)
)  # 200 with spend > 10000 (odd i); of them visits < 3 (i % 4 == 1): 100


async def load(client: Any, auth: Any) -> None:
    answer = await (await upload(client, auth, "customers", ROWS)).json()
    assert (await wait_done(client, auth, answer["uploadId"]))["rows"]["persisted"] == 400


async def start_campaign(
    client: Any, auth: Any, name: str, message: str, rule: str
) -> dict[str, Any]:
    made = await client.post(
        "/api/v1/campaigns", headers=auth, json={"name": name, "message": message, "rule": rule}
    )
    assert made.status == 201, await made.text()
    campaign: dict[str, Any] = await made.json()
    return campaign


async def wait_status(
    client: Any, auth: Any, campaign: str, status: str, timeout: float = 60
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            body: dict[str, Any] = await (
                await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)
            ).json()
            if body["status"] == status:
                return body
            await asyncio.sleep(0.1)


async def test_campaign_reaches_completed_with_exact_stats(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    created = await client.post(
        "/api/v1/compaigns",
        headers=auth,
        json={
            "name": "Win back",
            "intent": "win-back",
            "rule": "spend > 10000 AND visits < 3",
            "message": "Hi {first_name|there}, we miss you!",
        },
    )
    assert created.status == 201
    campaign = await created.json()
    assert campaign["audienceSize"] == 100 and campaign["status"] == "queued"
    done = await wait_status(client, auth, campaign["id"], "completed")
    db = delivering.db
    logs = [d async for d in db.communication_log.find({"campaignId": campaign["id"]})]
    assert len(logs) == 100 == len({d["customerId"] for d in logs})
    customers = {d["_id"]: d async for d in db.customers.find({})}
    for entry in logs:
        first = customers[entry["customerId"]]["name"].split()[0]
        text, _, link = entry["message"].partition("\n\nUnsubscribe: ")
        assert text == f"Hi {first}, we miss you!" and "/u/" in link
    by_status: dict[str, int] = {}
    for entry in logs:
        by_status[entry["status"]] = by_status.get(entry["status"], 0) + 1
    assert placed(done["stats"]) == {
        "pending": 0,
        "sent": by_status.get("SENT", 0),
        "delivered": 0,
        "failed": by_status.get("FAILED", 0),
        "unknown": 0,
        "cancelled": 0,
        "suppressed": 0,
    }
    assert 0.8 <= done["stats"]["sent"] / 100 <= 0.97
    assert done["sentAt"] and done["completedAt"]
    logs_url = f"/api/v1/campaigns/{campaign['id']}/logs?limit=60"
    page = await (await client.get(logs_url, headers=auth)).json()
    assert page["total"] == 100 and len(page["items"]) == 60 and page["cursor"]
    rest = await (await client.get(f"{logs_url}&cursor={page['cursor']}", headers=auth)).json()
    assert len(rest["items"]) == 40 and rest["cursor"] is None
    summary = await (await client.get("/api/v1/dashboard-summary", headers=auth)).json()
    assert summary["customers"] == 400 and summary["campaigns"] == 1
    assert summary["messages"] == by_status  # from the tally the stats moved


async def test_the_summary_counts_and_names_the_best_and_worst_spend_band(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "All", "message": "Hi {first_name}", "rule": "spend > 0"},
    )
    campaign = await made.json()
    done = await wait_status(client, auth, campaign["id"], "completed")
    body = await (
        await client.get(f"/api/v1/campaigns/{campaign['id']}/summary", headers=auth)
    ).json()
    stats = done["stats"]
    reached = stats["sent"] + stats["delivered"]
    assert body["source"] == "basic_ai"
    # In the stats' own words: the dummy vendor's receipts say SENT, never DELIVERED.
    assert stats["delivered"] == 0
    assert body["summary"].startswith(
        f"400 recipients: {stats['sent']} sent, 0 delivered, {stats['failed']} failed "
        f"({reached / 4:.1f}% sent or delivered). Best: spend "
    )
    assert "; worst: spend " in body["summary"]


async def test_a_stored_infinite_value_renders_as_its_default_and_the_campaign_completes(
    client: Any, auth: Any, delivering: Crmd
):
    await load(client, auth)
    # What an older crmd stored for a 400-digit spend, and for a huge custom value.
    broken = await delivering.db.customers.find_one({"customer_external_id": "K1"})
    await delivering.db.customers.update_one(
        {"_id": broken["_id"]}, {"$set": {"spend": float("inf"), "attrs": {"x": 10.0**300}}}
    )
    campaign = await start_campaign(
        client, auth, "Edge", "Hi {first_name}, {spend|valued} {attrs.x|-}", "visits = 1"
    )
    await wait_status(client, auth, campaign["id"], "completed")
    log = await delivering.db.communication_log.find_one(
        {"campaignId": campaign["id"], "customerId": broken["_id"]}
    )
    assert log["message"].partition("\n\nUnsubscribe: ")[0] == "Hi Person1, valued -"
