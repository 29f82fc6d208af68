"""Clicks and opens through the real app: the redirect answered from the campaign's own
links with nothing but a stream entry written, then applied by the tracking actor."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from crmd.app import Crmd
from crmd.http.keys import TRACKER
from crmd.messages import message_id
from crmd.receipts.hits import Hit, Tracker, apply_hits
from crmd.services.children import free_port
from crmd.store.tenant import TenantStore
from crmd.tracking.tokens import TrackingLinks
from tests.campaigns.conftest import a_campaign
from tests.campaigns.test_delivery_loop import wait_status
from tests.counted import commands
from tests.ingest.conftest import upload, wait_done

ROWS = "customer_external_id,name,email,spend\n" + "".join(
    f"T{i},Person{i},t{i}@x.io,{100 + i}\n" for i in range(6)
)
MESSAGE = "Hi {first_name}, the sale: https://shop.example/sale and https://shop.example/new."
HTML = (
    '<p><a href="https://shop.example/sale">Sale</a> <a href="https://shop.example/new">New</a></p>'
)
CLICK = re.compile(r"https?://[^/\s]+(/c/[A-Za-z0-9_-]+)")
PERSON = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


async def sent_campaign(client: Any, auth: Any, **fields: Any) -> dict[str, Any]:
    answer = await (await upload(client, auth, "customers", ROWS)).json()
    assert (await wait_done(client, auth, answer["uploadId"]))["rows"]["persisted"] == 6
    body = {"name": "Sale", "message": MESSAGE, "html": HTML, "rule": "spend > 0", **fields}
    made = await client.post("/api/v1/campaigns", headers=auth, json=body)
    assert made.status == 201, await made.text()
    campaign: dict[str, Any] = await made.json()
    return await wait_status(client, auth, campaign["id"], "completed")


async def logs_of(system: Crmd, campaign: str) -> list[dict[str, Any]]:
    return [d async for d in system.db.communication_log.find({"campaignId": campaign})]


async def until(check: Any, timeout: float = 20) -> Any:
    async with asyncio.timeout(timeout):
        while not (found := await check()):
            await asyncio.sleep(0.05)
    return found


async def test_a_click_redirects_at_once_and_is_counted_by_the_tracking_actor(
    client: Any, auth: Any, delivering: Crmd
):
    campaign = await sent_campaign(client, auth, trackOpens=True)
    assert campaign["trackClicks"] is True and campaign["trackOpens"] is True
    stored = await delivering.db.campaigns.find_one({"_id": ObjectId(campaign["id"])})
    assert stored["links"] == ["https://shop.example/sale", "https://shop.example/new"]
    [log, other, *_] = await logs_of(delivering, campaign["id"])
    assert "shop.example" not in log["message"]
    first, second = CLICK.findall(log["message"])
    went = await client.get(first, allow_redirects=False, headers={"User-Agent": PERSON})
    assert went.status == 302 and went.headers["Location"] == "https://shop.example/sale"
    assert "no-store" in went.headers["Cache-Control"]
    # Answered without touching the log: the click waits on the stream.
    assert await delivering.redis.xlen(delivering.streams.tracking) == 1
    assert (await delivering.db.communication_log.find_one({"_id": log["_id"]})) == log
    for _ in range(2):
        assert (await client.get(second, allow_redirects=False)).status == 302
    supervisor = delivering.start(("tracking",))
    assert await supervisor.wait_healthy(10)

    async def counted() -> dict[str, Any] | None:
        doc = await delivering.db.communication_log.find_one({"_id": log["_id"]})
        return doc if doc and doc.get("clicks") == {"0": 1, "1": 2} else None

    clicked = await until(counted)
    if log["status"] == "SENT":  # the dummy vendor fails a few: a click never lifts FAILED
        assert clicked["status"] == "CLICKED"
    assert "CLICKED" in clicked["times"] and len(clicked["hits"]) == 3

    # Opens: a person's, and a privacy proxy's as the mail arrives.
    links = TrackingLinks.from_secret(delivering.jwt_secret, "")
    pixel = await client.get(links.open_url(log["_id"]), headers={"User-Agent": PERSON})
    assert pixel.status == 200 and pixel.content_type == "image/gif"
    proxy = await client.get(links.open_url(other["_id"]), headers={"User-Agent": "Mozilla/5.0"})
    assert proxy.status == 200

    async def opened() -> bool:
        mine = await delivering.db.communication_log.find_one({"_id": log["_id"]})
        theirs = await delivering.db.communication_log.find_one({"_id": other["_id"]})
        return bool(mine.get("opens") == 1 and theirs.get("machineOpens") == 1)

    await until(opened)
    machine = await delivering.db.communication_log.find_one({"_id": other["_id"]})
    assert "OPENED" not in (machine.get("times") or {}) and machine["status"] == other["status"]


async def test_forged_changed_or_foreign_tokens_get_a_plain_404_page(
    client: Any, auth: Any, delivering: Crmd
):
    campaign = await sent_campaign(client, auth)
    [log, *_] = await logs_of(delivering, campaign["id"])
    path = CLICK.findall(log["message"])[0]
    links = TrackingLinks.from_secret(delivering.jwt_secret, "")
    beyond = links.click_url(log["_id"], 2)  # signed, but the campaign has two links
    foreign = TrackingLinks.from_secret("another secret", "").click_url(log["_id"], 0)
    for bad in (path[:-3], path[:-1] + ("A" if path[-1] != "A" else "B"), beyond, foreign):
        answer = await client.get(bad, allow_redirects=False)
        assert answer.status == 404 and answer.content_type == "text/html", bad
        assert "not one of ours" in await answer.text()
    assert (await client.get(links.open_url(log["_id"])[:-4])).status == 404  # cut short
    assert await delivering.redis.xlen(delivering.streams.tracking) == 0  # nothing queued


async def test_without_click_tracking_links_go_as_written(client: Any, auth: Any, delivering: Crmd):
    campaign = await sent_campaign(client, auth, trackClicks=False)
    assert campaign["trackClicks"] is False and campaign["trackOpens"] is False
    stored = await delivering.db.campaigns.find_one({"_id": ObjectId(campaign["id"])})
    assert stored["links"] == []
    for log in await logs_of(delivering, campaign["id"]):
        assert "https://shop.example/sale and https://shop.example/new." in log["message"]
        assert not CLICK.search(log["message"])


async def test_a_test_send_links_to_the_addresses_themselves(
    client: Any, auth: Any, delivering: Crmd
):
    campaign = await sent_campaign(client, auth)
    sent = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/test", headers=auth, json={"email": "me@x.io"}
    )
    assert sent.status == 200, await sent.text()
    assert "https://shop.example/sale" in (await sent.json())["message"]


async def test_hits_applied_twice_or_out_of_order_count_once_each(system: Crmd):
    store = TenantStore(system.db, "u1")
    campaign = ObjectId()
    await store["campaigns"].insert_one(a_campaign(campaign, "sent"))
    log = message_id(str(campaign), "c1")
    handed = datetime.now(UTC) - timedelta(hours=1)
    await store["communication_log"].insert_one(
        {"_id": log, "campaignId": str(campaign), "status": "SENT", "rank": 1, "handedAt": handed}
    )
    at = datetime.now(UTC).timestamp()
    early = [("1000-0", Hit("c", log, 0, at)), ("1000-1", Hit("o", log, 0, at, "Mozilla/5.0"))]
    late = [("2000-0", Hit("c", log, 1, at + 5)), ("2000-1", Hit("c", log, 0, at + 6))]
    touched = await apply_hits(system.db, late, 60)
    assert touched == {("u1", str(campaign))}
    await apply_hits(system.db, early, 60)  # another process's older batch, applied later
    await apply_hits(system.db, early, 60)  # and redelivered after a crash
    await apply_hits(system.db, [*late, *early], 60)
    doc = await store["communication_log"].find_one({"_id": log})
    assert doc["clicks"] == {"0": 2, "1": 1} and doc["opens"] == 1  # an hour later: a person
    assert doc["status"] == "CLICKED"
    assert abs(doc["times"]["CLICKED"].replace(tzinfo=UTC).timestamp() - at) < 0.01
    assert sorted(doc["hits"]) == [
        "000000000001000-000000",
        "000000000001000-000001",
        "000000000002000-000000",
        "000000000002000-000001",
    ]


def counted(system: Crmd, kind: str, outcome: str) -> float:
    value = system.metrics.tracking.labels(kind, outcome)._value.get()
    return float(value)


async def test_a_click_redis_cannot_take_still_redirects_and_is_counted_lost(system: Crmd):
    store = TenantStore(system.db, "u1")
    campaign = ObjectId()
    await store["campaigns"].insert_one(
        a_campaign(campaign, "sent", links=["https://shop.example/a"], trackClicks=True)
    )
    links = TrackingLinks.from_secret(system.jwt_secret, "")
    token = links.token("c", message_id(str(campaign), "c1"), 0)
    gone = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing listens
    tracker = Tracker(links, system.db, gone, "{t}:tracking", system.metrics)
    lost, refused = counted(system, "c", "lost"), counted(system, "c", "refused")
    assert await tracker.click(token, "agent") == "https://shop.example/a"
    assert counted(system, "c", "lost") == lost + 1
    assert await tracker.click(token[:-1], "agent") is None
    assert counted(system, "c", "refused") == refused + 1
    await gone.aclose()


async def test_a_campaigns_first_clicks_at_once_wait_for_one_read_of_its_links(system: Crmd):
    """Thirty-two clicks on a campaign crmd had not read yet each asked the database on
    the requests' one connection, and the last waited past two seconds for a 503."""
    store = TenantStore(system.db, "u1")
    campaign = ObjectId()
    await store["campaigns"].insert_one(
        a_campaign(campaign, "sent", links=["https://shop.example/a"], trackClicks=True)
    )
    links = TrackingLinks.from_secret(system.jwt_secret, "")
    tokens = [links.token("c", message_id(str(campaign), f"c{i}"), 0) for i in range(32)]
    tracker = Tracker(links, system.db, system.redis, "{t}:tracking", system.metrics)
    before = campaign_reads(system)
    went = await asyncio.gather(*(tracker.click(t, "agent") for t in tokens))
    assert went == ["https://shop.example/a"] * 32
    assert campaign_reads(system) == before + 1
    assert await tracker.click(tokens[0], "agent") == "https://shop.example/a"
    assert campaign_reads(system) == before + 1  # kept


def campaign_reads(system: Crmd) -> float:
    return commands(system, "campaigns").get("find", 0.0)


async def test_a_batch_of_many_hits_on_one_message_redelivered_counts_once(system: Crmd):
    log = message_id(str(ObjectId()), "c1")
    await system.db.communication_log.insert_one(
        {"_id": log, "userId": "u1", "campaignId": "c", "status": "SENT", "rank": 1}
    )
    at = datetime.now(UTC).timestamp()
    batch = [(f"{1_700_000_000_000 + i}-0", Hit("c", log, 0, at)) for i in range(120)]
    keep = 2 * len(batch)  # what the actor keeps for a read of this size
    await apply_hits(system.db, batch, 60, keep)
    await apply_hits(system.db, batch, 60, keep)  # the same batch again
    doc = await system.db.communication_log.find_one({"_id": log})
    assert doc["clicks"] == {"0": 120} and len(doc["hits"]) == 120


async def test_a_click_while_mongodb_is_away_answers_a_plain_try_again_page(
    client: Any, system: Crmd
):
    links = TrackingLinks.from_secret(system.jwt_secret, "")
    token_path = links.click_url(message_id(str(ObjectId()), "c1"), 0)
    tracker = client.app[TRACKER]
    away = AsyncMongoClient(port=free_port(), serverSelectionTimeoutMS=300)  # nothing there
    tracker.db, kept = away.crmd, tracker.db
    try:
        before = counted(system, "c", "unavailable")
        answer = await client.get(token_path, allow_redirects=False)
        assert answer.status == 503 and answer.content_type == "text/html"
        assert "try again" in (await answer.text()) and answer.headers["Retry-After"] == "30"
        assert counted(system, "c", "unavailable") == before + 1
    finally:
        tracker.db = kept
        await away.close()
