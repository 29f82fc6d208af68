"""The attribution figures' parts: campaigns sent days ago, orders placed since, and what
crediting the orders to the campaigns costs when they are uploaded.

One user has ``size`` customers and two campaigns: the first sent to every one of them
``FIRST_AGO`` before the run (a tenth held out, by crmd's own draw under the campaign's
seed), with a window of ``FIRST_DAYS``; the second to every third customer
``SECOND_AGO`` before, with a window of ``SECOND_DAYS``, so the latest message wins over
a longer window still open. The campaigns are created through the API (as drafts, so
their documents are crmd's own) and their logs written straight into the database as
the dispatch writes them (``crmd.campaigns.chunks.new_log``, ids by
``crmd.messages.message_id``): sending 100k messages for real would add minutes and
could not date them days back. A second user has the same customers and no campaign.
Both upload the same ``size`` orders, placed over the ``ORDER_DAYS`` before the run,
through crmd's ingest (the CSV upload); what the first upload costs beyond the second
(seconds, database writes, crmd's CPU) is the attribution's.

The difference in seconds is small beside each upload's (at 10k orders the two took
the same time to a second on a loaded machine), so attribution's own speed is timed
apart: ``crmd.campaigns.attribution.attribute`` run again from this process over the
user's stored orders, a chunk at a time as the ingest hands them over, after their
attributions are removed, against the raw bulk upsert of the same attribution documents.

Each order's campaign is worked out here by the rule as written
(``crmd.campaigns.attribution``'s docstring): the ``attributions`` crmd wrote must be
exactly those, campaign by campaign and group by group.
"""

from __future__ import annotations

import asyncio
import csv
import re
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

import aiohttp
import msgspec
from bson import ObjectId
from pymongo import UpdateOne

from bench.data import EVERYONE, write_customers, write_orders
from bench.server import Api, cpu_seconds, upload_csv
from crmd.campaigns.attribution import attribute
from crmd.campaigns.chunks import new_log
from crmd.campaigns.groups import draw
from crmd.messages import FINAL_RANK, RANK, MessageStatus, message_id
from crmd.store.documents import encode
from crmd.store.indexes import INDEXES
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new

Doc = dict[str, Any]
FIRST_AGO, FIRST_DAYS = timedelta(days=10), 7
SECOND_AGO, SECOND_DAYS = timedelta(days=4), 2
SECOND_EVERY = 3
"""Every third customer is sent the second campaign too."""
HOLDOUT = 10.0
ORDER_DAYS = 11
"""Orders are placed over the ORDER_DAYS (and one) before the run: some before the first
campaign, some after every window has closed."""
SEND_STEP = timedelta(milliseconds=1)
"""Between two recipients' hand-overs (a send of 100k takes a minute or two)."""
RAW_BATCH = 500
"""Upserts a bulk write in the limit: as many as an ingest chunk's orders."""
POLL = 0.2
"""Seconds between two looks at the upload: the finest the uploads are timed."""
UPLOAD_WAIT = 3600
SUM_WAIT = 600
"""Seconds the clock may take to sum the campaigns' results after the upload."""
METRIC = re.compile(r"^(crmd_mongo_\w+)\{([^}]*)\} (\S+)$")
COUNTED = {
    "crmd_mongo_documents_total": "collection",
    "crmd_mongo_documents_read_total": "collection",
    "crmd_mongo_seconds_total": "command",
}
"""crmd's counters of documents written and read (by collection) and of the database's
time (by command), as ``/metrics`` shows them."""


class Sent(msgspec.Struct):
    """A campaign as its recipients got it."""

    id: str
    days: int
    at: dict[int, datetime]
    """Each recipient's (by customer number) hand-over, or would-be one."""
    held: set[int]


class Cost(msgspec.Struct):
    """What crmd spent on one upload of the orders, until its results were summed."""

    seconds: float
    """From the POST until the upload is done."""
    cpu: float
    writes: dict[str, float]
    """Documents written, by collection."""
    reads: dict[str, float]
    """Documents read, by collection."""
    database: dict[str, float]
    """The database's seconds, by command (as crmd waited for them)."""

    @property
    def all_writes(self) -> float:
        return sum(self.writes.values())


class Measured(msgspec.Struct):
    orders: int
    expected: dict[str, int]
    """Orders due to each ``<campaign>:<group>`` by the rule."""
    with_campaigns: Cost
    without: Cost
    attribute_seconds: float
    """``attribute`` over every chunk again, from this process."""
    attribute_cpu: float
    raw_seconds: float
    raw_cpu: float
    chunks: int
    """The orders file's, as crmd's ingest cuts it."""
    campaigns: int


async def counters(http: aiohttp.ClientSession, base: str) -> dict[str, dict[str, float]]:
    """crmd's counters so far (``COUNTED``): each summed by the one label named."""
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    sums: dict[str, dict[str, float]] = {name: defaultdict(float) for name in COUNTED}
    for line in text.splitlines():
        found = METRIC.match(line)
        if found is None or found[1] not in COUNTED:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', found[2]))
        sums[found[1]][labels.get(COUNTED[found[1]], "")] += float(found[3])
    return sums


def _less(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


async def user_id(api: Api) -> str:
    return str((await api.call("GET", "/api/v1/user/me"))["user"]["id"])


async def until_done(api: Api, upload: str) -> None:
    started = perf_counter()
    while True:
        job = await api.call("GET", f"/api/v1/uploads/{upload}")
        if job["status"] == "failed":
            raise RuntimeError(f"upload failed: {job.get('reason')}")
        if job["status"] == "done":
            return
        if perf_counter() - started > UPLOAD_WAIT:
            raise RuntimeError(f"upload {upload} not stored after {UPLOAD_WAIT} s: {job}")
        await asyncio.sleep(POLL)


async def upload_all(api: Api, path: Path, kind: str) -> float:
    """The file uploaded and stored; the seconds from the POST until it is done."""
    started = perf_counter()
    upload, _ = await upload_csv(api, path, kind)
    await until_done(api, upload)
    return perf_counter() - started


async def send(
    api: Api, db: Any, user: str, customers: list[Doc], recipients: range, ago: timedelta, days: int
) -> Sent:
    """A campaign created through the API and its logs written as if it had been sent
    to ``recipients`` (customer numbers) ``ago``: each HELD_OUT or DELIVERED."""
    created = await api.call(
        "POST",
        "/api/v1/campaigns",
        expect=201,
        json={
            "name": f"sent {ago.days} days ago",
            "message": "Hi {first_name|there}",
            "rule": EVERYONE,
            "vendor": "dummy_vendor",
            "draft": True,
            "holdout": HOLDOUT,
            "attributionDays": days,
        },
    )
    campaign = created["id"]
    doc = await db.campaigns.find_one({"_id": ObjectId(campaign)}, {"seed": 1})
    began = (datetime.now(UTC) - ago).replace(microsecond=0)
    sent = Sent(campaign, days, {}, set())
    logs = []
    for seq, number in enumerate(recipients, 1):
        customer = customers[number]
        at = began + seq * SEND_STEP
        held = draw(doc["seed"], "holdout", customer["_id"]) * 100 < HOLDOUT
        entry = {
            "_id": message_id(campaign, customer["_id"]),
            "seq": seq,
            "customerId": customer["_id"],
            "recipient": customer["email"],
            "phone": "",
            "message": "Hi there",
        }
        status = MessageStatus.HELD_OUT if held else MessageStatus.DELIVERED
        log = msgspec.structs.replace(
            new_log(entry, campaign, "dummy_vendor", status, 0 if held else 1, at),
            rank=FINAL_RANK if held else RANK[status],
            handedAt=at,
        )
        logs.append({**encode(log), "userId": user})
        sent.at[number] = at
        if held:
            sent.held.add(number)
    for start in range(0, len(logs), 1000):
        # (a batch the driver sent again after a dropped connection finds its logs)
        await insert_new(
            db.communication_log.insert_many(logs[start : start + 1000], ordered=False)
        )
    last = max(sent.at.values())
    await db.campaigns.update_one(
        {"_id": ObjectId(campaign)},
        {
            "$set": {
                "status": "completed",
                "createdAt": began - timedelta(minutes=5),
                "plannedAt": began,
                "sentAt": last,
                "completedAt": last + timedelta(days=1),
                "planTop": len(customers),
                "planNext": len(customers),
                "planSeq": len(logs),
                "lastSeq": len(logs),
                "audienceSize": len(logs),
            }
        },
    )
    return sent


def due(orders: list[tuple[int, datetime]], campaigns: list[Sent]) -> Counter[str]:
    """The orders each campaign and group is credited with: the customer's latest message
    at or before the order, if the order is within that campaign's days of it."""
    credited: Counter[str] = Counter()
    for number, placed in orders:
        latest = None
        for campaign in campaigns:
            at = campaign.at.get(number)
            if at is not None and at <= placed and (latest is None or at > latest[0]):
                latest = (at, campaign)
        if latest is not None and placed <= latest[0] + timedelta(days=latest[1].days):
            group = "held" if number in latest[1].held else "messaged"
            credited[f"{latest[1].id}:{group}"] += 1
    return credited


def placed_orders(path: Path, prefix: str) -> list[tuple[int, datetime]]:
    """Each order of the file: its customer's number and when it was placed."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            (
                int(row["customer_external_id"].removeprefix(prefix)),
                datetime.strptime(row["orderDate"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC),
            )
            for row in csv.DictReader(handle)
        ]


async def check_stored(db: Any, user: str, expected: Counter[str], when: str) -> None:
    """The attributions stored for the user are, by campaign and group, as expected."""
    rows = await db.attributions.aggregate(
        [
            {"$match": {"userId": user}},
            {"$group": {"_id": {"c": "$campaignId", "g": "$group"}, "n": {"$sum": 1}}},
        ]
    )
    found = Counter({f"{r['_id']['c']}:{r['_id']['g']}": r["n"] async for r in rows})
    if found != expected:
        raise RuntimeError(f"attribution {when}: stored {dict(found)}, due {dict(expected)}")


async def summed(db: Any, campaigns: list[Sent]) -> bool:
    """Every campaign's results counted since its attributions last changed."""
    ids = [ObjectId(c.id) for c in campaigns]
    dirty = await db.campaigns.count_documents({"_id": {"$in": ids}, "resultsDirty": {"$gt": 0}})
    return bool(dirty == 0)


async def costed(
    api: Api, pid: int, path: Path, done: Callable[[], Awaitable[bool]] | None = None
) -> Cost:
    """The orders file uploaded: its seconds until stored, and what crmd wrote, read and
    spent in CPU until then and until ``done`` (the results summed)."""
    before = await counters(api.http, api.base)
    cpu = cpu_seconds(pid)
    seconds = await upload_all(api, path, "orders")
    waited = perf_counter()
    while done is not None:
        if await done():
            break
        if perf_counter() - waited > SUM_WAIT:
            raise RuntimeError(f"the campaigns' results not summed {SUM_WAIT} s after the upload")
        await asyncio.sleep(POLL)
    cpu = cpu_seconds(pid) - cpu
    after = await counters(api.http, api.base)
    spent = {name: _less(after[name], before[name]) for name in COUNTED}
    return Cost(
        seconds,
        cpu,
        spent["crmd_mongo_documents_total"],
        spent["crmd_mongo_documents_read_total"],
        {k: round(v, 3) for k, v in spent["crmd_mongo_seconds_total"].items()},
    )


async def attributed_again(
    db: Any, user: str, customers: dict[str, Doc], chunk_rows: int
) -> tuple[float, float]:
    """crmd's ``attribute`` over the user's stored orders, ``chunk_rows`` at a time in
    the order they were stored, with the customers each chunk names, after the user's
    attributions are removed (so each is written again). Returns the seconds and this
    process's CPU seconds it took."""
    store = TenantStore(db, user, majority=True)
    fields = {"customer_external_id": 1, "customerEmail": 1, "amount": 1, "orderDate": 1}
    orders = [
        d async for d in db.orders.find({"userId": user}, fields, sort=[("n", 1)], batch_size=5000)
    ]
    await db.attributions.delete_many({"userId": user})
    spent, cpu = 0.0, 0.0
    for start in range(0, len(orders), chunk_rows):
        chunk = orders[start : start + chunk_rows]
        named = {o["customer_external_id"]: customers[o["customer_external_id"]] for o in chunk}
        started, cpu_started = perf_counter(), process_time()
        await attribute(store, [(o["_id"], o) for o in chunk], list(named.values()))
        spent += perf_counter() - started
        cpu += process_time() - cpu_started
    return spent, cpu


async def raw_upserts(db: Any, user: str) -> tuple[float, float]:
    """The limit: the attribution documents crmd stored, upserted by ``_id`` into an
    empty collection with the same indexes, RAW_BATCH a bulk write. Returns the seconds
    and this process's CPU seconds the bulk writes took."""
    docs = [d async for d in db.attributions.find({"userId": user}, batch_size=5000)]
    await db.drop_collection("bench_raw_attributions")
    raw = db.bench_raw_attributions
    await raw.create_indexes(list(INDEXES["attributions"]))
    spent, cpu = 0.0, 0.0
    for start in range(0, len(docs), RAW_BATCH):
        updates = [
            UpdateOne(
                {"_id": d["_id"]}, {"$set": {k: v for k, v in d.items() if k != "_id"}}, upsert=True
            )
            for d in docs[start : start + RAW_BATCH]
        ]
        started, cpu_started = perf_counter(), process_time()
        await raw.bulk_write(updates, ordered=False)
        spent += perf_counter() - started
        cpu += process_time() - cpu_started
    await db.drop_collection("bench_raw_attributions")
    return spent, cpu


async def measure_attribution(
    with_campaigns: Api,
    without: Api,
    db: Any,
    pid: int,
    work: Path,
    size: int,
    chunk_rows: int,
    say: Callable[[str], None],
) -> Measured:
    customers_csv, orders_csv = work / "attribution-customers.csv", work / "attribution-orders.csv"
    write_customers(customers_csv, size, "t", seed=13)
    say(f"attribution: uploading {size:,} customers for each of two users")
    await asyncio.gather(
        *(upload_all(api, customers_csv, "customers") for api in (with_campaigns, without))
    )
    user = await user_id(with_campaigns)
    by_external = {
        d["customer_external_id"]: d
        async for d in db.customers.find(
            {"userId": user}, {"customer_external_id": 1, "email": 1}, batch_size=5000
        )
    }
    customers = [by_external[f"t{n}"] for n in range(size)]
    say("  two campaigns' logs written as sent 10 and 4 days ago")
    campaigns = [
        await send(with_campaigns, db, user, customers, range(size), FIRST_AGO, FIRST_DAYS),
        await send(
            with_campaigns,
            db,
            user,
            customers,
            range(0, size, SECOND_EVERY),
            SECOND_AGO,
            SECOND_DAYS,
        ),
    ]
    until = datetime.now(UTC) - timedelta(minutes=1)
    write_orders(orders_csv, size, "t", size, seed=17, until=until, days=ORDER_DAYS)
    expected = due(placed_orders(orders_csv, "t"), campaigns)
    say(f"  {size:,} orders, {sum(expected.values()):,} of them due to a campaign")
    without_cost = await costed(without, pid, orders_csv)
    say(f"  without a campaign: stored in {without_cost.seconds:.1f} s")

    async def results_summed() -> bool:
        return await summed(db, campaigns)

    with_cost = await costed(with_campaigns, pid, orders_csv, results_summed)
    say(f"  with two campaigns: stored in {with_cost.seconds:.1f} s")
    await check_stored(db, user, expected, "as uploaded")
    again_seconds, again_cpu = await attributed_again(db, user, by_external, chunk_rows)
    await check_stored(db, user, expected, "attributed again")
    raw_seconds, raw_cpu = await raw_upserts(db, user)
    return Measured(
        orders=size,
        expected=dict(expected),
        with_campaigns=with_cost,
        without=without_cost,
        attribute_seconds=again_seconds,
        attribute_cpu=again_cpu,
        raw_seconds=raw_seconds,
        raw_cpu=raw_cpu,
        chunks=-(-size // chunk_rows),
        campaigns=len(campaigns),
    )
