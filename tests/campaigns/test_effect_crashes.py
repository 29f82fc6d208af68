"""An experiment survives kill -9 wherever it is: while planning puts recipients in the
holdout and the variants, while an A/B test's share is sent and its winner is picked,
and while the orders that decide the effect are attributed. Each actor runs in a
process of its own (``effect_actor``) that SIGKILLs itself at a named point; another
process finishes. Afterwards every customer has exactly one log, in the group the
campaign's keyed hash puts them in (``groups.group_of``, computed here from the stored
seed), nobody was handed to the vendor twice, and every order is counted once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.campaigns import effect, jobs, stats, winner
from crmd.campaigns.clock import recover_stranded
from crmd.campaigns.groups import Group, group_of
from crmd.config import Config
from crmd.messages import MessageStatus
from crmd.store.documents import Campaign, decode
from crmd.store.tenant import TenantStore
from tests.campaigns.test_effect import customers_csv, load_customers, logs_of, upload_orders
from tests.ingest.conftest import upload

pytestmark = pytest.mark.slow  # kill -9 tests

REPO = Path(__file__).resolve().parents[2]
HELD = MessageStatus.HELD_OUT
LABELS = "AB"
VARIANTS = [{"message": "A: hello {name}"}, {"message": "B: hello {name}"}]


def effect_actor(config: Config, kind: str, target: str, *die: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.campaigns.effect_actor",
        kind,
        config.mongodb.url,
        config.mongodb.database,
        config.redis.url,
        config.redis.stream_prefix,
        target,
        *die,
    ]


async def run(argv: list[str], **env: str) -> int:
    """The process's exit code (-9: it killed itself where it was told to)."""
    environment = {**os.environ, "VENDOR_RATE": "1000", **env}
    done = await asyncio.to_thread(subprocess.run, argv, timeout=120, cwd=REPO, env=environment)
    return done.returncode


async def create(client: Any, auth: Any, body: dict[str, Any]) -> str:
    made = await client.post("/api/v1/campaigns", headers=auth, json=body)
    assert made.status == 201, await made.text()
    return str((await made.json())["id"])


async def campaign_of(system: Crmd, campaign: str) -> Campaign:
    return decode(await system.db.campaigns.find_one({"_id": ObjectId(campaign)}), Campaign)


async def groups_by_customer(system: Crmd, campaign: Campaign) -> dict[str, Group]:
    """Every customer's group, by the campaign's stored seed."""
    return {
        str(c["_id"]): group_of(campaign, str(c["_id"]))
        async for c in system.db.customers.find({}, projection={"_id": 1})
    }


async def recount(system: Crmd, campaign: str) -> None:
    """The stats recounted, as a receipt would have them (the recording vendor sends none)."""
    owner = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
    await stats.refresh(TenantStore(system.db, owner["userId"]), campaign)


async def handed_ids(system: Crmd) -> list[str]:
    return [d["messageId"] async for d in system.db.handed.find({})]


def held_in(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [log for log in logs if log["status"] == HELD]


def one_log_each(logs: list[dict[str, Any]], groups: dict[str, Group]) -> None:
    customers = [log["customerId"] for log in logs]
    assert len(customers) == len(set(customers)) == len(groups)
    assert set(customers) == set(groups)


async def test_planning_killed_twice_still_holds_out_and_splits_everyone_by_their_hash(
    client: Any, auth: Any, system: Crmd, config: Config, ingesting: Any
):
    await load_customers(client, auth, 2000)
    body = {
        "name": "Split",
        "rule": "spend > 0",
        "holdout": 30,
        "message": "",
        "variants": VARIANTS,
        "abTest": {"mode": "split"},
    }
    campaign = await create(client, auth, body)
    small = {"PLAN_STRETCH": "500"}  # four stretches of 500 customers

    # Killed after planning the 2nd stretch's chunks (the 1st stretch is sent by then),
    # before the 3rd stretch's job is queued and the 2nd recorded done.
    assert await run(effect_actor(config, "dispatch", campaign, "chunks", "2"), **small) == -9
    planned = await campaign_of(system, campaign)
    assert (planned.status, planned.planNext) == ("planning", 501)
    groups = await groups_by_customer(system, planned)
    numbers = {
        str(c["_id"]): c["n"] async for c in system.db.customers.find({}, projection={"n": 1})
    }
    first_stretch = [c for c, n in numbers.items() if n <= 500 and not groups[c].held]
    assert len(await handed_ids(system)) == len(first_stretch)

    # Killed again after it planned the 2nd stretch once more and queued the 3rd's job,
    # before recording the 2nd done: the job is queued twice.
    assert await run(effect_actor(config, "dispatch", campaign, "next-plan", "1"), **small) == -9
    assert (await campaign_of(system, campaign)).planNext == 501
    assert await run(effect_actor(config, "dispatch", campaign), **small) == 0

    done = await campaign_of(system, campaign)
    assert done.status == "sent" and done.audienceSize == 2000
    logs = await logs_of(system, campaign)
    one_log_each(logs, groups)
    held = {log["customerId"] for log in logs if log["status"] == HELD}
    assert held == {c for c, g in groups.items() if g.held}
    assert 500 < len(held) < 700  # 30 % of 2,000, at random
    messaged = [log for log in logs if log["status"] != HELD]
    for log in messaged:
        variant = groups[log["customerId"]].variant
        assert log["variant"] == variant
        assert log["message"].startswith(f"{LABELS[variant]}: hello ")
    per_variant = Counter(log["variant"] for log in messaged)
    assert all(600 < per_variant[v] < 800 for v in (0, 1)), per_variant
    handed = await handed_ids(system)
    assert len(handed) == len(set(handed)) == len(messaged)  # nobody twice
    assert set(handed) == {log["_id"] for log in messaged}
    await recount(system, campaign)
    answer = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)).json()
    assert answer["stats"]["heldOut"] == len(held)
    assert {v["label"]: v["recipients"] for v in answer["variants"]} == {
        LABELS[v]: per_variant[v] for v in (0, 1)
    }


async def test_an_ab_test_killed_while_sending_its_share_and_after_picking_its_winner(
    client: Any, auth: Any, system: Crmd, config: Config, ingesting: Any
):
    """The test share's sending is killed half way; the clock is killed once the winner
    is recorded but before the job planning the rest is queued, which the clock's
    stranded check queues (after ``stranded_after_seconds``, 30 at the least: its pass
    is run here with the time it would run at); then the rest's sending is killed half
    way."""
    await load_customers(client, auth, 1000)
    body = {
        "name": "Winner",
        "rule": "spend > 0",
        "holdout": 20,
        "message": "",
        "variants": VARIANTS,
        "abTest": {
            "mode": "winner",
            "testPercent": 30,
            "waitMinutes": 0.01,
            "metric": "conversions",
        },
    }
    campaign = await create(client, auth, body)
    assert await run(effect_actor(config, "dispatch", campaign, "handed", "1")) == -9
    assert len(await handed_ids(system)) == 100  # one vendor batch
    assert await run(effect_actor(config, "dispatch", campaign)) == 0

    testing = await campaign_of(system, campaign)
    assert testing.status == "testing" and testing.winner is None
    groups = await groups_by_customer(system, testing)
    share = await logs_of(system, campaign)
    assert {log["customerId"] for log in share} == {c for c, g in groups.items() if not g.rest}
    assert 220 < len(share) < 380  # 30 % of 1,000
    # Variant B's recipients order far more often than A's: B must win.
    names = {
        str(c["_id"]): c["customer_external_id"]
        async for c in system.db.customers.find({}, projection={"customer_external_id": 1})
    }
    rng = random.Random(30)
    lines = []
    for log in share:
        if log["status"] != HELD and rng.random() < (0.6 if log["variant"] == 1 else 0.05):
            at = log["handedAt"].replace(tzinfo=UTC) + timedelta(seconds=1)
            lines.append(f"W-{log['_id']},{names[log['customerId']]},20.00,{at.isoformat()}")
    await upload_orders(client, auth, lines)

    assert await run(effect_actor(config, "clock", campaign, "decided", "1")) == -9
    decided = await campaign_of(system, campaign)
    assert decided.status == "queued" and decided.winner is not None
    stream = system.streams.dispatch
    assert campaign not in await jobs.awaiting_plan(system.redis, stream)  # stranded
    bound = config.campaigns.stranded_after_seconds
    later = datetime.now(UTC) + timedelta(seconds=bound + 1)
    assert await recover_stranded(system.db, system.redis, stream, bound, later) == 1
    assert await winner.decide_due(system.db, system.redis, stream, later) == 0  # once
    # The rest's sending killed half way too.
    assert await run(effect_actor(config, "dispatch", campaign, "handed", "2")) == -9
    assert len(await handed_ids(system)) == len(share) - len(held_in(share)) + 200
    assert await run(effect_actor(config, "dispatch", campaign)) == 0

    done = await campaign_of(system, campaign)
    assert done.status == "sent" and done.winner == decided.winner
    picked = done.winner
    assert picked is not None and (picked.variant, picked.metric) == (1, "conversions")
    logs = await logs_of(system, campaign)
    one_log_each(logs, groups)
    assert {log["customerId"] for log in logs if log["status"] == HELD} == {
        c for c, g in groups.items() if g.held
    }
    messaged = [log for log in logs if log["status"] != HELD]
    decided_at = picked.decidedAt.replace(tzinfo=UTC)
    tested: Counter[int] = Counter()
    for log in messaged:
        group = groups[log["customerId"]]
        sent_as = 1 if group.rest else group.variant
        assert log["variant"] == sent_as
        assert log["message"].startswith(f"{LABELS[sent_as]}: hello ")
        after = log["handedAt"].replace(tzinfo=UTC) > decided_at
        assert after == group.rest  # the test share before the winner, the rest after
        if not group.rest:
            tested[log["variant"]] += 1
    assert sum(1 for log in messaged if groups[log["customerId"]].rest) > 400
    handed = await handed_ids(system)
    assert len(handed) == len(set(handed)) == len(messaged)  # nobody twice
    assert set(handed) == {log["_id"] for log in messaged}
    figures = {f["variant"]: f for f in picked.figures}
    assert {v: figures[v]["recipients"] for v in (0, 1)} == {v: tested[v] for v in (0, 1)}
    b, a = figures[1]["value"], figures[0]["value"]
    assert b["estimate"] > a["estimate"] and b["low"] <= b["estimate"] <= b["high"]
    assert picked.reason.startswith("B had the most conversions per recipient")


@contextlib.asynccontextmanager
async def clock_summing_results(system: Crmd) -> AsyncIterator[None]:
    """The clock's results pass, every tenth of a second, as another crmd process's
    clock runs it while orders are stored."""

    async def tick() -> None:
        while True:
            await effect.refresh_dirty(system.db)
            await asyncio.sleep(0.1)

    ticking = asyncio.create_task(tick())
    try:
        yield
    finally:
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking


async def test_orders_attributed_across_a_kill_are_each_counted_once(
    client: Any, auth: Any, system: Crmd, config: Config
):
    """The orders' second chunk is killed once its attributions are written, before the
    campaign is marked for its results to be summed; the clock summed the first chunk's
    meanwhile. After the restart the campaign's figures are exactly the orders made."""
    customers = await (await upload(client, auth, "customers", customers_csv(600))).json()
    assert await run(effect_actor(config, "ingest", customers["uploadId"])) == 0
    body = {"name": "Effect", "message": "Hi {name}", "rule": "spend > 0", "holdout": 30}
    campaign = await create(client, auth, body)
    assert await run(effect_actor(config, "dispatch", campaign)) == 0
    await recount(system, campaign)
    logs = await logs_of(system, campaign)
    assert len(logs) == 600
    names = {
        str(c["_id"]): c["customer_external_id"]
        async for c in system.db.customers.find({}, projection={"customer_external_id": 1})
    }
    rng = random.Random(31)
    lines: list[str] = []
    made = {"messaged": [0, 0, 0.0], "held": [0, 0, 0.0]}  # converted, orders, revenue
    for log in sorted(logs, key=lambda log: log["seq"]):
        group = "held" if log["status"] == HELD else "messaged"
        handed = log["handedAt"].replace(tzinfo=UTC)
        who = names[log["customerId"]]
        before = (handed - timedelta(minutes=5)).isoformat()  # never counted
        lines.append(f"B-{who},{who},{rng.uniform(10, 50):.2f},{before}")
        if rng.random() < (0.3 if group == "messaged" else 0.15):
            made[group][0] += 1
            for k in range(rng.choice((1, 2))):
                amount = round(rng.uniform(5, 200), 2)
                lines.append(f"O-{who}-{k},{who},{amount},{handed + timedelta(seconds=1 + k)}")
                made[group][1] += 1
                made[group][2] += amount
    assert len(lines) > 500  # two chunks of orders, each with orders to attribute
    text = "order_external_id,customer_external_id,amount,orderDate\n" + "\n".join(lines) + "\n"
    orders = (await (await upload(client, auth, "orders", text)).json())["uploadId"]

    async with clock_summing_results(system):
        assert await run(effect_actor(config, "ingest", orders, "attributed", "2")) == -9
        assert await run(effect_actor(config, "ingest", orders)) == 0
    # The clock's next pass that sums it (a campaign is summed at most every
    # RESULTS_EVERY seconds).
    await effect.refresh_dirty(system.db, datetime.now(UTC) + timedelta(minutes=1))

    answer = await (await client.get(f"/api/v1/campaigns/{campaign}", headers=auth)).json()
    expected = made["messaged"][1] + made["held"][1]
    assert await system.db.attributions.count_documents({"campaignId": campaign}) == expected
    owner = await system.db.campaigns.find_one({"_id": ObjectId(campaign)})
    counted = await effect.refresh_results(TenantStore(system.db, owner["userId"]), campaign)
    for group, name in (("messaged", "messaged"), ("held", "heldOut")):
        converted, count, revenue = made[group]
        figures = answer["effect"][name]
        assert (figures["converted"], figures["orders"]) == (converted, count), name
        assert figures["revenue"] == pytest.approx(revenue, abs=0.01)
        summed = counted["groups"][group]
        assert (summed["converted"], summed["orders"]) == (converted, count)
        assert summed["revenue"] == pytest.approx(revenue, abs=0.01)
    held = sum(1 for log in logs if log["status"] == HELD)
    assert answer["effect"]["heldOut"]["customers"] == held
    assert answer["effect"]["messaged"]["customers"] == 600 - held
