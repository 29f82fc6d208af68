"""Did it work: a campaign with a holdout, sent through the whole system, then orders
made after the send with a known probability per group and uploaded by CSV. The
reported effect holds the true lift inside its 95 % interval; with no effect, its
interval holds zero; the figures are exactly the orders the test made that qualify
(none dated before the message, none twice after a re-upload).

The campaign's seed (which decides who is held out) is fixed here before it is sent, so
that each run is the same experiment: a 95 % interval misses 1 time in 20, and a test
may not be that 1 by chance on some runs only."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.config import Config
from crmd.messages import MessageStatus
from crmd.services.embedded import Urls
from crmd.testing.servers import make_test_config
from tests.campaigns.test_delivery_loop import wait_status
from tests.ingest.conftest import upload, wait_done

CUSTOMERS = 600
MU, SIGMA = 3.0, 0.8
"""Buyers spend lognormally: mean exp(MU + SIGMA²/2)."""
MEAN_ORDER = math.exp(MU + SIGMA**2 / 2)


@pytest.fixture
def config(services: Urls, port: int) -> Config:
    return make_test_config(
        services,
        server={"port": port},
        plugins={"dummy_vendor": {"delay_min": 0.01, "delay_max": 0.05, "seed": 7}},
        campaigns={"clock_interval_seconds": 1.0, "clock_lease_seconds": 3.0},
    )


@pytest.fixture
async def running(delivering: Crmd) -> Crmd:
    supervisor = delivering.start(("clock",))
    assert await supervisor.wait_healthy(10)
    return delivering


def customers_csv(n: int) -> str:
    rows = ["customer_external_id,name,email,spend,visits"]
    rows += [f"C{i},Customer {i},c{i}@example.com,{100 + i},{1 + i % 5}" for i in range(n)]
    return "\n".join(rows) + "\n"


async def load_customers(client: Any, auth: Any, n: int = CUSTOMERS) -> None:
    answer = await (await upload(client, auth, "customers", customers_csv(n))).json()
    assert (await wait_done(client, auth, answer["uploadId"], 60))["rows"]["persisted"] == n


async def sent_with_seed(
    client: Any, auth: Any, system: Crmd, body: dict[str, Any], seed: str
) -> str:
    """A draft made, its seed fixed, then sent."""
    made = await client.post("/api/v1/campaigns", headers=auth, json={**body, "draft": True})
    assert made.status == 201, await made.text()
    campaign = (await made.json())["id"]
    await system.db.campaigns.update_one({"_id": ObjectId(campaign)}, {"$set": {"seed": seed}})
    sent = await client.post(f"/api/v1/campaigns/{campaign}/send", headers=auth)
    assert sent.status == 200, await sent.text()
    return str(campaign)


async def logs_of(system: Crmd, campaign: str) -> list[dict[str, Any]]:
    return [d async for d in system.db.communication_log.find({"campaignId": campaign})]


async def upload_orders(client: Any, auth: Any, lines: list[str]) -> None:
    text = "order_external_id,customer_external_id,amount,orderDate\n" + "\n".join(lines) + "\n"
    answer = await (await upload(client, auth, "orders", text)).json()
    done = await wait_done(client, auth, answer["uploadId"], 60)
    assert done["rows"]["persisted"] == len(lines), done


async def wait_results(client: Any, auth: Any, campaign: str, orders: int) -> dict[str, Any]:
    """The campaign once its effect counts ``orders`` orders in all."""
    async with asyncio.timeout(30):
        while True:
            body: dict[str, Any] = await (
                await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)
            ).json()
            effect = body["effect"]
            if effect["messaged"]["orders"] + effect["heldOut"]["orders"] == orders:
                return body
            await asyncio.sleep(0.2)


def external_id(customer_number: int) -> str:
    return f"C{customer_number}"


@pytest.mark.parametrize(
    ("messaged_p", "held_p", "seed"),
    [(0.30, 0.12, "effect-seed-1"), (0.20, 0.20, "no-effect-seed-2")],
    ids=["a-known-effect", "no-effect"],
)
async def test_the_reported_interval_holds_the_true_lift(
    client: Any, auth: Any, running: Crmd, messaged_p: float, held_p: float, seed: str
):
    await load_customers(client, auth)
    body = {"name": "Effect", "message": "Hi {name}", "rule": "spend > 0", "holdout": 50}
    campaign = await sent_with_seed(client, auth, running, body, seed)
    done = await wait_status(client, auth, campaign, "completed", 120)
    logs = await logs_of(running, campaign)
    held = [log for log in logs if log["status"] == MessageStatus.HELD_OUT]
    assert len(logs) == CUSTOMERS and 240 < len(held) < 360  # about half, at random
    assert done["stats"]["heldOut"] == len(held)
    assert done["holdout"] == 50 and done["attributionDays"] == 7
    numbers = {
        str(c["_id"]): int(c["customer_external_id"][1:])
        async for c in running.db.customers.find({}, projection={"customer_external_id": 1})
    }
    rng = random.Random(seed)
    lines: list[str] = []
    made = {"messaged": [0, 0, 0.0], "held": [0, 0, 0.0]}  # converted, orders, revenue
    groups: dict[str, list[dict[str, Any]]] = {"messaged": [], "held": []}
    for log in sorted(logs, key=lambda log: log["seq"]):
        groups["held" if log["status"] == MessageStatus.HELD_OUT else "messaged"].append(log)
        who = external_id(numbers[log["customerId"]])
        # An order from before the message never counts.
        before = (log["handedAt"].replace(tzinfo=UTC) - timedelta(minutes=5)).isoformat()
        lines.append(f"B-{who},{who},{rng.uniform(10, 50):.2f},{before}")
    # Each group buys as its rate says, exactly: p of its customers, a third of them twice,
    # at amounts drawn from the lognormal and scaled to its mean. A sample drawn at random
    # would miss the true lift one run in twenty (a 95 % interval), by design of the
    # interval, not of crmd; here the figures must hold it every run.
    for group, members in groups.items():
        buyers = rng.sample(
            members, round((messaged_p if group == "messaged" else held_p) * len(members))
        )
        bought = [(log, k) for j, log in enumerate(buyers) for k in range(2 if j % 3 == 0 else 1)]
        drawn = [rng.lognormvariate(MU, SIGMA) for _ in bought]
        scale = MEAN_ORDER * len(drawn) / sum(drawn) if drawn else 1.0
        made[group][0] = len(buyers)
        for (log, k), amount in zip(bought, drawn, strict=True):
            who = external_id(numbers[log["customerId"]])
            at = (log["handedAt"].replace(tzinfo=UTC) + timedelta(seconds=1 + k)).isoformat()
            lines.append(f"O-{who}-{k},{who},{round(amount * scale, 2)},{at}")
            made[group][1] += 1
            made[group][2] += round(amount * scale, 2)
    await upload_orders(client, auth, lines)
    orders = made["messaged"][1] + made["held"][1]
    answer = await wait_results(client, auth, campaign, int(orders))
    effect = answer["effect"]
    for group, name in (("messaged", "messaged"), ("held", "heldOut")):
        converted, count, revenue = made[group]
        assert effect[name]["converted"] == converted
        assert effect[name]["orders"] == count
        assert effect[name]["revenue"] == pytest.approx(revenue, abs=0.05)
    assert effect["heldOut"]["customers"] == len(held)
    assert effect["messaged"]["customers"] == CUSTOMERS - len(held)
    assert effect["enoughData"] is True
    assert effect["window"]["provisional"] is True  # seven days to go
    lift = messaged_p - held_p
    conversion = effect["conversionLift"]
    assert conversion["low"] <= lift <= conversion["high"]
    # Buyers order 4/3 times on average; revenue per customer is p * 4/3 * mean order.
    revenue_lift = lift * 4 / 3 * MEAN_ORDER
    revenue = effect["revenueLift"]
    assert revenue["low"] <= revenue_lift <= revenue["high"]
    if lift:
        assert conversion["low"] > 0  # the effect is large enough to be seen
    else:
        assert revenue["low"] < 0 < revenue["high"]
    incremental = effect["incrementalConversions"]
    assert incremental["estimate"] == pytest.approx(
        conversion["estimate"] * effect["messaged"]["customers"], abs=0.01
    )
    assert answer["revenue"] == effect["messaged"]["revenue"]
    # The same file again: nothing counted twice.
    await upload_orders(client, auth, lines)
    again = await wait_results(client, auth, campaign, int(orders))
    assert again["effect"]["messaged"] == effect["messaged"]
    listed = await (await client.get("/api/v1/campaigns", headers=auth)).json()
    assert listed["items"][0]["revenue"] == answer["revenue"]


async def test_without_a_holdout_revenue_is_attributed_but_no_lift_is_claimed(
    client: Any, auth: Any, running: Crmd
):
    await load_customers(client, auth, 40)
    body = {"name": "Plain", "message": "Hi {name}", "rule": "spend > 0"}
    made = await client.post("/api/v1/campaigns", headers=auth, json=body)
    campaign = (await made.json())["id"]
    await wait_status(client, auth, campaign, "completed", 60)
    logs = await logs_of(running, campaign)
    numbers = {
        str(c["_id"]): c["customer_external_id"]
        async for c in running.db.customers.find({}, projection={"customer_external_id": 1})
    }
    now = datetime.now(UTC)
    lines = []
    for i, log in enumerate(logs[:10]):
        who = numbers[log["customerId"]]
        at = log["handedAt"].replace(tzinfo=UTC) + timedelta(seconds=2)
        lines.append(f"P{i},{who},10.00,{at.isoformat()}")
    # Dated a day ahead of now: not believed, not attributed.
    lines.append(
        f"F1,{numbers[logs[11]['customerId']]},99.00,{(now + timedelta(days=1)).isoformat()}"
    )
    await upload_orders(client, auth, lines)
    answer = await wait_results(client, auth, campaign, 10)
    effect = answer["effect"]
    assert effect["messaged"]["revenue"] == 100.0 and answer["revenue"] == 100.0
    assert effect["heldOut"]["customers"] == 0
    assert effect["conversionLift"] is None and effect["revenueLift"] is None
    assert effect["enoughData"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"holdout": 51}, "$.holdout"),
        ({"holdout": -1}, "$.holdout"),
        ({"attributionDays": 0}, "$.attributionDays"),
        (
            {"message": "", "variants": [{"message": "A {nope"}, {"message": "B"}]},
            "$.variants[0].message",
        ),
        ({"message": "", "variants": [{"message": "only one"}]}, "$.variants"),
        (
            {
                "message": "",
                "variants": [{"message": "A"}, {"message": "B"}],
                "abTest": {"mode": "winner", "testPercent": 100},
            },
            "$.abTest.testPercent",
        ),
        (
            {
                "message": "",
                "trackClicks": False,
                "variants": [{"message": "A"}, {"message": "B"}],
                "abTest": {"mode": "winner", "metric": "clicks"},
            },
            "$.abTest.metric",
        ),
        ({"abTest": {"mode": "split"}}, "$.variants"),
        ({"variants": [{"message": "A"}, {"message": "B"}]}, "$.message"),
    ],
)
async def test_an_experiment_that_cannot_run_is_refused_naming_the_field(
    client: Any, auth: Any, body: dict[str, Any], field: str
):
    sent = {"name": "Bad", "message": "Hi", "rule": "spend > 0", **body}
    answer = await client.post("/api/v1/campaigns", headers=auth, json=sent)
    assert answer.status == 422, await answer.text()
    error = (await answer.json())["error"]
    assert field in (error["details"].get("field") or "") or field in error["message"], error
    listed = await (await client.get("/api/v1/campaigns", headers=auth)).json()
    assert listed["total"] == 0


async def test_an_ab_test_sends_the_winner_by_orders_to_the_rest_and_nobody_gets_two(
    client: Any, auth: Any, running: Crmd
):
    """Variant B's recipients in the test share order far more often than A's; the
    test waits in ``testing``, is paused there while the orders arrive (the winner is
    not picked while paused), resumed, and B goes to everyone else."""
    await load_customers(client, auth, 300)
    body = {
        "name": "AB",
        "rule": "spend > 0",
        "holdout": 10,
        "variants": [
            {"message": "A: hello {name}", "subject": "A"},
            {"message": "B: hello {name}", "subject": "B"},
        ],
        "abTest": {
            "mode": "winner",
            "testPercent": 40,
            "waitMinutes": 0.1,
            "metric": "conversions",
        },
    }
    campaign = await sent_with_seed(client, auth, running, body, "ab-seed-3")
    testing = await wait_status(client, auth, campaign, "testing", 60)
    assert testing["abTest"]["decideAt"] is not None and testing["abTest"]["winner"] is None
    paused = await client.post(f"/api/v1/campaigns/{campaign}/pause", headers=auth)
    assert paused.status == 200, await paused.text()
    first = await logs_of(running, campaign)
    test_share = {log["customerId"] for log in first}
    assert 80 < len(test_share) < 160  # about 40 % of 300
    numbers = {
        str(c["_id"]): c["customer_external_id"]
        async for c in running.db.customers.find({}, projection={"customer_external_id": 1})
    }
    rng = random.Random(3)
    lines = []
    for log in first:
        if log["status"] == MessageStatus.HELD_OUT:
            continue
        if rng.random() < (0.6 if log["variant"] == 1 else 0.05):
            at = log["handedAt"].replace(tzinfo=UTC) + timedelta(seconds=1)
            lines.append(f"T-{log['_id']},{numbers[log['customerId']]},20.00,{at.isoformat()}")
    await upload_orders(client, auth, lines)
    await wait_results(client, auth, campaign, len(lines))
    await asyncio.sleep(1.5)  # past decideAt, and the clock has ticked: still paused
    still = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)).json()
    assert still["status"] == "paused" and still["abTest"]["winner"] is None
    resumed = await client.post(f"/api/v1/campaigns/{campaign}/resume", headers=auth)
    assert resumed.status == 200, await resumed.text()
    done = await wait_status(client, auth, campaign, "completed", 120)
    winner = done["abTest"]["winner"]
    assert winner["variant"] == 1 and winner["label"] == "B" and winner["metric"] == "conversions"
    assert [f["label"] for f in winner["figures"]] == ["A", "B"]
    assert "B had the most conversions per recipient" in winner["reason"]
    logs = await logs_of(running, campaign)
    assert len(logs) == 300 == len({log["customerId"] for log in logs})
    for log in logs:
        if log["customerId"] not in test_share and log["status"] != MessageStatus.HELD_OUT:
            assert log["variant"] == 1  # the rest: the winner only
    held = [log for log in logs if log["status"] == MessageStatus.HELD_OUT]
    assert 10 < len(held) < 55 and all("variant" not in log for log in held)
    figures = {v["label"]: v for v in done["variants"]}
    assert figures["B"]["recipients"] > figures["A"]["recipients"]  # B went to the rest
    assert figures["A"]["converted"] + figures["B"]["converted"] == len(lines)
    assert figures["B"]["converted"] > figures["A"]["converted"]
    assert done["stats"]["heldOut"] == len(held)


async def test_a_split_test_sends_each_variant_to_its_share_and_counts_each(
    client: Any, auth: Any, running: Crmd
):
    await load_customers(client, auth, 120)
    body = {
        "name": "Split",
        "rule": "spend > 0",
        "variants": [
            {"message": "A https://shop.example/a", "subject": "A {name}"},
            {"message": "B https://shop.example/b", "subject": "B {name}"},
            {"message": "C https://shop.example/a", "html": "<p>C</p>"},
        ],
    }
    campaign = await sent_with_seed(client, auth, running, body, "split-seed-4")
    done = await wait_status(client, auth, campaign, "completed", 60)
    assert done["abTest"]["mode"] == "split" and done["abTest"]["winner"] is None
    assert [link["url"] for link in done["links"]] == [
        "https://shop.example/a",
        "https://shop.example/b",
    ]  # one catalogue: C's link is A's index
    logs = await logs_of(running, campaign)
    counts = [sum(1 for log in logs if log.get("variant") == v) for v in range(3)]
    assert sum(counts) == 120 and min(counts) > 20  # about a third each, at random
    assert [v["recipients"] for v in done["variants"]] == counts
    for log in logs:
        assert log["message"].startswith("ABC"[log["variant"]])
    preview = await client.post(
        f"/api/v1/campaigns/{campaign}/test",
        headers=auth,
        json={"email": "c1@example.com", "variant": 1},
    )
    assert (await preview.json())["message"].startswith("B ")
    missing = await client.post(
        f"/api/v1/campaigns/{campaign}/test",
        headers=auth,
        json={"email": "c1@example.com", "variant": 4},
    )
    assert (
        missing.status == 422 and (await missing.json())["error"]["details"]["field"] == "$.variant"
    )


async def test_another_tenants_orders_never_move_a_campaigns_figures(
    client: Any, auth: Any, running: Crmd
):
    """Bob's orders name customers with the ids and addresses of Alice's, dated inside
    her campaign's window: her figures do not move."""
    await load_customers(client, auth, 30)
    body = {"name": "Mine", "message": "Hi {name}", "rule": "spend > 0", "holdout": 20}
    made = await client.post("/api/v1/campaigns", headers=auth, json=body)
    campaign = (await made.json())["id"]
    await wait_status(client, auth, campaign, "completed", 60)
    signed = await client.post("/api/v1/user/dev-login", json={"email": "bob@example.com"})
    bob = {"Authorization": f"Bearer {(await signed.json())['token']}"}
    await load_customers(client, bob, 30)  # the same ids and addresses, his own
    at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    lines = [f"X{i},C{i},500.00,{at}" for i in range(30)]
    await upload_orders(client, bob, lines)
    await asyncio.sleep(2.5)  # two clock ticks
    assert await running.db.attributions.count_documents({}) == 0
    mine = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)).json()
    assert mine["revenue"] == 0 and mine["effect"]["messaged"]["orders"] == 0
    # Her own order, to show the same path does attribute.
    await upload_orders(client, auth, [f"Y1,C1,5.00,{datetime.now(UTC).isoformat()}"])
    answer = await wait_results(client, auth, campaign, 1)
    assert answer["effect"]["messaged"]["orders"] + answer["effect"]["heldOut"]["orders"] == 1


async def test_a_winner_test_too_small_to_judge_is_refused_now_or_when_its_draft_is_sent(
    client: Any, auth: Any, ingesting: Any
):
    await load_customers(client, auth, 30)
    body = {
        "name": "Tiny",
        "rule": "spend > 0",
        "variants": [{"message": "A"}, {"message": "B"}],
        "abTest": {"mode": "winner", "testPercent": 20, "metric": "conversions"},
    }
    refused = await client.post("/api/v1/campaigns", headers=auth, json=body)
    assert refused.status == 422
    error = (await refused.json())["error"]
    assert error["details"]["field"] == "$.abTest.testPercent" and "about 3" in error["message"]
    draft = await client.post("/api/v1/campaigns", headers=auth, json={**body, "draft": True})
    assert draft.status == 201  # its audience may grow before it is sent
    campaign = (await draft.json())["id"]
    sent = await client.post(f"/api/v1/campaigns/{campaign}/send", headers=auth)
    assert sent.status == 422
    assert (await sent.json())["error"]["details"]["field"] == "$.abTest.testPercent"
    still = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)).json()
    assert still["status"] == "draft"
    split = {**body, "abTest": {"mode": "split", "testPercent": 20, "waitMinutes": 5}}
    answer = await (await client.post("/api/v1/campaigns", headers=auth, json=split)).json()
    assert (answer["abTest"]["testPercent"], answer["abTest"]["waitMinutes"]) == (100, 0)
