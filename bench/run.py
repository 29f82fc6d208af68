"""``make bench``: crmd measured against the limits of its own machine, in one run.

Each figure is set against a limit measured in the same run on the same servers (the
``csv`` module reading the file, pymongo writing the same documents), so the ratios
hold from one machine to another even where the absolute times do not. crmd runs as
``crmd serve`` in a process of its own, so its resident memory is its own. The table
goes to stdout, the figures and the machine to ``bench/results.json``.

    python -m bench.run [--quick | --full] [--out PATH]

The default run takes smaller samples (about 20 minutes on two cores; ``docs/benchmarks.md``
says which figures they change); ``--full`` takes the full sizes (a million rows,
100,000 customers), for over two hours; ``--quick`` is a hundred times smaller than
those: a smoke test of this code, not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import msgspec
from bson import ObjectId
from pymongo import AsyncMongoClient, UpdateOne
from redis.asyncio import Redis

import crmd
from bench.attribution import measure_attribution
from bench.clicks import Click, bare_redirect, caught_up, click_all, queue_clicks
from bench.data import EVERYONE, RULES, csv_reader_seconds, write_customers
from bench.flows import EVENT_BATCH, measure_flows
from bench.load import IMPORT_SHARE, P50_LIMIT_MS, P99_LIMIT_MS, SHED_LIMIT, LoadSizes, measure_load
from bench.profile import Profiler
from bench.profile import markdown as profiles_markdown
from bench.scaling import measure_scaling
from bench.server import (
    RECEIPT_SECRET,
    Api,
    MemorySampler,
    Spent,
    cpu_seconds,
    crmd_process,
    database_servers,
    spending,
    upload_csv,
)
from bench.server import signed_in as signed_in_api
from crmd.config import CampaignsConfig, IngestConfig, StreamsConfig
from crmd.messages import RANK, MessageStatus
from crmd.plugins.signature import signed_headers
from crmd.receipts.actor import RECOUNT_GAP
from crmd.segments.counts import Rule
from crmd.store.indexes import INDEXES
from crmd.store.reads import find_in
from crmd.streams import StreamNames

Doc = dict[str, Any]
MB = 1024 * 1024
MEMORY_LIMIT_MB = 250
PROFILES = "profiles"
"""The folder beside results.json that the phases' profiles go to."""
PHASES = (
    "previews",
    "dispatch",
    "receipts",
    "clicks",
    "console",
    "attribution",
    "flows",
    "load",
    "ingestion",
    "scaling",
)
CONSOLE_LIMIT_MS = 100
ACTIVE = ("receiving", "queued", "processing")
LINKS = ("https://shop.example/new", "https://shop.example/sale")
"""The campaign's two links: each recipient's message carries them as its click links."""
CAMPAIGN_MESSAGE = (
    f"Hi {{first_name|there}}, {{spend}} well spent! New: {LINKS[0]} Sale: {LINKS[1]}"
)
CLICK_LINK = re.compile(r"/c/[A-Za-z0-9_-]+")
REDIRECT_SHARE = 0.5
"""Of a bare aiohttp app's redirects per second: the token's check and the campaign's
(cached) links may cost no more than the HTTP stack and the XADD do."""
APPLIED_SHARE = 0.7
"""Of the raw bulk update of the same logs, as receipts are reconciled: the same updates,
batched as the actor reads them, only through the stream."""
REDIRECT_P99_MS = 100.0
"""A person waits for the redirect: its p99 at full speed within the API's p50 target."""
RECOUNT_WRITES = 4
"""What one recount of a campaign's stats writes at most: its ticket, its count, the
user's tally by status and the campaign's completion (``crmd.campaigns.stats``)."""
APPLY_BATCH = StreamsConfig().batch_size
"""Hits the tracking actor reads at a time, so at most the updates of one bulk write:
the raw limit writes as many at a time."""
ATTRIBUTED_SHARE = 0.5
"""Of the raw bulk upsert of the same attribution documents: attribution also reads each
chunk's messages and attributions by id, and marks the campaigns it touched."""
ATTRIBUTED_UPLOAD_SHARE = 0.8
"""Of the orders upload's speed with no campaign to credit."""
CLOCK_SECONDS = CampaignsConfig().clock_interval_seconds
EVENTS_ACCEPTED_SHARE = 0.5
"""Of the raw insert of the same events: accepting one checks it, finds its customer
and queues it, with no write of its own."""
EVENTS_STORED_SHARE = 0.5
"""Of the raw insert: storing also keeps each customer's recent event times."""
TIMER_LAG_P99 = 2 * CLOCK_SECONDS
"""A due wait is handed over at the clock's next tick, or the one after under load."""
WRITTEN = ("attributions", "campaigns")
"""What attribution writes: one document an attributed order, and the marks and results
of the campaigns it touched."""
CHUNK_ROWS = IngestConfig().chunk_rows


class Sizes(msgspec.Struct, frozen=True):
    upload_rows: int = 1_000_000
    audience: int = 100_000
    batched_receipts: int = 100_000
    """Of the audience's messages, those sent a receipt in posts of 1,000."""
    single_receipts: int = 10_000
    clicks: int = 20_000
    """Clicked through the redirect, and as many more queued for the tracking actor."""
    attribution: int = 100_000
    """Customers, the first campaign's recipients and orders of the attribution figures."""
    flows: int = 10_000
    """Customers run through a flow, and events of each kind posted."""
    flow_waiting: int = 100_000
    """Customers waiting at once, for the timer lag."""
    click_clients: int = 32
    preview_repeats: int = 1
    scaling_rows: int = 20_000
    raw_ingest: int = 100_000
    """The ingestion's limit is timed on this many of crmd's documents, not all the
    upload's (the whole 1M would add a quarter of an hour): half written into an empty
    collection, as crmd's first rows were, and half into the full one, as its last rows
    were."""
    load: LoadSizes = LoadSizes()

    def quick(self) -> Sizes:
        """A hundred times smaller: a smoke test of this code (under a minute), not a
        measurement."""
        return Sizes(
            self.upload_rows // 100,
            self.audience // 100,
            single_receipts=self.single_receipts // 100,
            clicks=self.clicks // 100,
            attribution=self.attribution // 100,
            flows=self.flows // 100,
            flow_waiting=self.flow_waiting // 100,
            click_clients=8,
            scaling_rows=self.scaling_rows // 100,
            batched_receipts=self.batched_receipts // 100,
            raw_ingest=self.raw_ingest // 100,
            load=LoadSizes(self.load.rows // 100, clients=5, max_seconds=60),
        )

    def budget(self) -> Sizes:
        """The default run's sizes (about 20 minutes on two cores; ``docs/benchmarks.md`` sets
        the figures at both sizes side by side); ``--full`` runs these defaults, for over
        two hours."""
        return Sizes(
            self.upload_rows // 10,
            self.audience // 2,
            single_receipts=self.single_receipts // 2,
            clicks=self.clicks // 2,
            attribution=self.attribution // 20,
            flows=self.flows // 20,
            flow_waiting=self.flow_waiting // 50,
            click_clients=self.click_clients,
            scaling_rows=self.scaling_rows // 2,
            batched_receipts=self.batched_receipts // 4,
            raw_ingest=self.raw_ingest * 2 // 5,
            load=LoadSizes(self.load.rows // 5, self.load.clients, max_seconds=300),
        )


class Figure(msgspec.Struct):
    name: str
    crmd: float
    limit: float | None
    unit: str
    ratio: float | None
    target: str
    met: bool | None
    detail: dict[str, Any] = {}


def rate_figure(
    name: str,
    crmd_rate: float,
    limit_rate: float,
    target: float,
    unit: str = "rows/s",
    **detail: Any,
) -> Figure:
    ratio = crmd_rate / limit_rate
    return Figure(
        name,
        round(crmd_rate, 1),
        round(limit_rate, 1),
        unit,
        round(ratio, 3),
        f">= {target}",
        ratio >= target,
        detail,
    )


def say(text: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


async def wait_for(
    what: str, check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.25
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(every)


async def scratch(db: Any, name: str, like: str) -> Any:
    """An empty collection with the indexes of crmd's ``like``: where the raw limits
    write."""
    await db.drop_collection(name)
    collection = db[name]
    await collection.create_indexes(list(INDEXES[like]))
    return collection


async def copy_timed(
    source: Any, query: Doc, target: Any, batch: int, limit: int = 0, skip: int = 0, retag: str = ""
) -> tuple[int, float]:
    """Read crmd's documents (``limit`` of them after ``skip``, or all) and
    ``insert_many`` them into ``target`` in batches; only the inserts are timed. With
    ``retag`` each gets a new ``_id`` and that ``userId`` (to go beside the originals).
    Returns (documents, seconds)."""
    spent, count, docs = 0.0, 0, []
    async for doc in source.find(query, batch_size=batch, limit=limit, skip=skip):
        if retag:
            doc.update(_id=f"{retag}-{doc['_id']}", userId=retag)
        docs.append(doc)
        if len(docs) == batch:
            spent += await _insert(target, docs)
            count, docs = count + len(docs), []
    if docs:
        spent += await _insert(target, docs)
        count += len(docs)
    return count, spent


async def _insert(target: Any, docs: list[Doc]) -> float:
    started = perf_counter()
    await target.insert_many(docs, ordered=False)
    return perf_counter() - started


async def counted(api: Api, rule: str) -> Any:
    """The preview of ``rule`` once its count is complete: a count not done within
    crmd's wait is answered 202 with what is counted so far, and asked again."""
    while True:
        async with api.http.post(
            api.base + "/api/v1/segments/preview", headers=api.headers, json={"rule": rule}
        ) as response:
            if response.status not in (200, 202):
                raise RuntimeError(f"preview {rule!r}: {response.status} {await response.text()}")
            answer = await response.json()
        if response.status == 200:
            return answer
        await asyncio.sleep(0.05)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    def __init__(
        self,
        base: str,
        db: Any,
        sampler: MemorySampler,
        sizes: Sizes,
        work: Path,
        database_pid: int | None = None,
        redis_url: str = "",
    ) -> None:
        self.base = base
        self.redis_url = redis_url
        self.database_pid = database_pid
        self.db = db
        self.sampler = sampler
        self.sizes = sizes
        self.work = work
        self.figures: list[Figure] = []
        self.notes: dict[str, Any] = {}
        self.audience_upload = ""

    def spending(self, api: Api) -> AbstractAsyncContextManager[Spent]:
        """What crmd writes and spends in CPU during the block."""
        return spending(api.http, self.base, self.sampler.pid)

    async def upload(self, api: Api, path: Path) -> tuple[str, float]:
        return await upload_csv(api, path)

    async def until_persisted(self, api: Api, upload_id: str, rows: int) -> int:
        """Wait for the upload to be persisted; returns how many times it asked."""
        last_said = time.monotonic()
        asked = 0

        async def done() -> bool:
            nonlocal last_said, asked
            asked += 1
            job = await api.call("GET", f"/api/v1/uploads/{upload_id}")
            if job["status"] == "failed":
                raise RuntimeError(f"upload failed: {job.get('reason')}")
            if time.monotonic() - last_said > 15:
                say(f"  persisted {job['rows'].get('persisted', 0):,} of {rows:,}")
                last_said = time.monotonic()
            return bool(job["status"] == "done")

        await wait_for("the upload to be persisted", done, timeout=3600, every=0.5)
        return asked

    async def request_cpu(self, api: Api, path: str, n: int = 100) -> float:
        """crmd's CPU seconds for one GET of ``path`` (the mean of ``n``, one at a time,
        read from /proc: no /metrics scrape of its own to share out), less what crmd
        spends meanwhile when asked nothing (its clock and actors): what the bench's own
        polling costs crmd, taken out of a per-item figure."""
        pid = self.sampler.pid
        started, before = perf_counter(), cpu_seconds(pid)
        await asyncio.sleep(2.0)
        idle = (cpu_seconds(pid) - before) / (perf_counter() - started)
        started, before = perf_counter(), cpu_seconds(pid)
        for _ in range(n):
            await api.call("GET", path)
        spent = cpu_seconds(pid) - before - idle * (perf_counter() - started)
        return max(0.0, spent) / n

    async def ingestion(self, api: Api) -> None:
        rows = self.sizes.upload_rows
        path = self.work / "customers.csv"
        size = write_customers(path, rows, "c")
        read_rows, read_seconds = csv_reader_seconds(path)
        assert read_rows == rows, (read_rows, rows)
        for n in range(3):  # a few campaigns for the latency probe to list
            await api.call(
                "POST",
                "/api/v1/campaigns",
                expect=201,
                json={
                    "name": f"draft {n}",
                    "message": "Hi {first_name|there}",
                    "rule": "spend > 1",
                    "draft": True,
                },
            )
        say(
            f"upload: {rows:,} rows, {size / MB:.0f} MB; csv.reader read it in {read_seconds:.2f} s"
        )
        latencies: list[float] = []
        with self.sampler.phase("upload"):
            started = perf_counter()
            async with self.spending(api) as accepting:
                upload_id, accept_seconds = await self.upload(api, path)
            say(f"  202 after {accept_seconds:.2f} s; persisting")
            probing = asyncio.Event()

            async def probe() -> None:
                while not probing.is_set():
                    sent = perf_counter()
                    await api.call("GET", "/api/v1/campaigns")
                    latencies.append(perf_counter() - sent)
                    await asyncio.sleep(0.2)

            prober = asyncio.create_task(probe())
            async with self.spending(api) as persisting:
                polls = await self.until_persisted(api, upload_id, rows)
            end_to_end = perf_counter() - started
            probing.set()
            await prober
        # The bench's own requests while it waited (the probe's and its own polls) are
        # crmd's work, but not the rows': their CPU, measured 100 requests at a time, is
        # taken out of the per-row figure (the whole is kept as gross).
        polling = polls * await self.request_cpu(api, f"/api/v1/uploads/{upload_id}")
        if latencies:
            polling += len(latencies) * await self.request_cpu(api, "/api/v1/campaigns")
        rows_cpu = max(0.0, persisting.cpu - polling)
        say(f"  persisted after {end_to_end:.1f} s; copying the same documents raw")
        # The limit at both ends of crmd's run: half the sample into an empty collection
        # with the same indexes, half into crmd's own collection, now full (as another
        # tenant's documents, with new ids).
        half = min(rows, self.sizes.raw_ingest) // 2
        uploaded = {"uploadId": upload_id}
        raw = await scratch(self.db, "bench_raw_customers", "customers")
        first, first_seconds = await copy_timed(
            self.db.customers, uploaded, raw, batch=500, limit=half
        )
        await self.db.drop_collection("bench_raw_customers")
        last, last_seconds = await copy_timed(
            self.db.customers,
            uploaded,
            self.db.customers,
            batch=500,
            limit=half,
            skip=half,
            retag="bench-raw",
        )
        assert first == last == half, (first, last, half)
        sample, raw_seconds = first + last, first_seconds + last_seconds
        self.figures.append(
            rate_figure(
                "upload acceptance (POST until 202)",
                rows / accept_seconds,
                rows / read_seconds,
                0.4,
                limit_is="csv.reader iterating the file",
                seconds=round(accept_seconds, 2),
                file_mb=round(size / MB, 1),
                **accepting.per(rows),
            )
        )
        self.figures.append(
            rate_figure(
                "end-to-end ingestion (POST until persisted)",
                rows / end_to_end,
                sample / raw_seconds,
                0.8,
                limit_is="insert_many of the same documents, 500 a "
                "batch: half into an empty collection with the same indexes, half into crmd's "
                "full one",
                limit_sample=sample,
                seconds=round(end_to_end, 1),
                raw_seconds=round(raw_seconds, 1),
                limit_empty_rows_per_s=round(first / first_seconds, 1),
                limit_full_rows_per_s=round(last / last_seconds, 1),
                # after the 202, less the CPU of the bench's own requests meanwhile
                **{
                    **persisting.per(rows),
                    "cpu_us_per_item": round(rows_cpu * 1e6 / rows, 1),
                    "gross_cpu_us_per_item": round(persisting.cpu * 1e6 / rows, 1),
                    "polling_requests": len(latencies) + polls,
                    "polling_cpu_seconds": round(polling, 2),
                },
            )
        )
        self.figures.append(
            Figure(
                "GET /api/v1/campaigns while the upload is processed, p50 / p99 ms",
                round(quantile(latencies, 0.5) * 1000, 1),
                None,
                "ms",
                None,
                "report",
                None,
                {
                    "p99_ms": round(quantile(latencies, 0.99) * 1000, 1),
                    "requests": len(latencies),
                    "max_ms": round(max(latencies) * 1000, 1),
                },
            )
        )

    async def console(self, api: Api, campaign: str) -> None:
        """Every console page of the user with the 100k customers and the 100k-recipient
        campaign, timed by crmd itself (its Server-Timing header: the server's time,
        not the network's)."""
        customer = (await api.call("GET", "/api/v1/customers?limit=1"))["items"][0]["id"]
        pages = [
            "/",
            "/customers",
            "/customers?rule=spend > 40000 AND visits > 3",
            f"/customers/{customer}",
            "/orders",
            "/imports",
            f"/imports/{self.audience_upload}",
            "/segments",
            "/campaigns",
            "/campaigns/new",
            f"/campaigns/{campaign}",
            f"/campaigns/{campaign}?status=FAILED",
            "/plugins",
            "/system",
        ]
        cookie = {"Cookie": f"crmd_session={api.headers['Authorization'].split()[1]}"}
        repeats = 5 if self.sizes.audience >= 10_000 else 2
        medians: dict[str, float] = {}
        worst: list[float] = []
        for page in pages:
            times = []
            for _ in range(repeats):
                async with api.http.get(api.base + page, headers=cookie) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"console {page}: {answer.status}")
                    timing = answer.headers["Server-Timing"]
                    times.append(float(timing.split("dur=")[1]))
            medians[page] = round(statistics.median(times), 1)
            worst.append(max(times))
        slowest = max(medians, key=lambda page: medians[page])
        say(f"console: slowest page {slowest} at {medians[slowest]} ms (median)")
        self.figures.append(
            Figure(
                f"console pages at {self.sizes.audience:,} customers: slowest median / max ms",
                medians[slowest],
                CONSOLE_LIMIT_MS,
                "ms",
                None,
                f"< {CONSOLE_LIMIT_MS}",
                medians[slowest] < CONSOLE_LIMIT_MS,
                {"p99_ms": round(max(worst), 1), "slowest": slowest, "pages": medians},
            )
        )

    async def audience(self, api: Api) -> str:
        """The campaign user's customers (uploaded through crmd, not timed); their id."""
        n = self.sizes.audience
        path = self.work / "audience.csv"
        write_customers(path, n, "a", seed=11)
        say(f"audience: uploading {n:,} customers for the previews and the campaign")
        started = perf_counter()
        upload_id, _ = await self.upload(api, path)
        self.audience_upload = upload_id
        await self.until_persisted(api, upload_id, n)
        self.notes["audience_upload_rows_per_s"] = round(n / (perf_counter() - started), 1)
        me = await api.call("GET", "/api/v1/user/me")
        return str(me["user"]["id"])

    async def previews(self, api: Api, user: str) -> None:
        crmd_times, raw_times, sizes = [], [], []
        for rule in RULES:
            mine, theirs = [], []
            for _ in range(self.sizes.preview_repeats):
                started = perf_counter()
                answer = await counted(api, rule)
                mine.append(perf_counter() - started)
                # As crmd counts it: a rule with relative times at the hour it began.
                query = {**Rule(rule).filter, "userId": user}
                started = perf_counter()
                count = await self.db.customers.count_documents(query)
                theirs.append(perf_counter() - started)
                assert count == answer["audienceSize"], (rule, count, answer["audienceSize"])
            crmd_times.append(statistics.median(mine))
            raw_times.append(statistics.median(theirs))
            sizes.append(count)
            say(
                f"  preview {rule!r}: {count:,} of {self.sizes.audience:,}, crmd "
                f"{crmd_times[-1] * 1000:.0f} ms, count_documents {raw_times[-1] * 1000:.0f} ms"
            )
        total, raw = sum(crmd_times), sum(raw_times)
        self.figures.append(
            Figure(
                f"segment preview, {len(RULES)} rules over {self.sizes.audience:,} customers (s)",
                round(total, 3),
                round(raw, 3),
                "s",
                round(total / raw, 3),
                "<= 1.1",
                total / raw <= 1.1,
                {
                    "limit_is": "count_documents with the same filters",
                    "rules": [
                        {
                            "rule": r,
                            "audience": s,
                            "crmd_ms": round(c * 1000, 1),
                            "count_ms": round(w * 1000, 1),
                        }
                        for r, s, c, w in zip(RULES, sizes, crmd_times, raw_times, strict=True)
                    ],
                },
            )
        )

    async def dispatch(self, api: Api) -> str:
        n = self.sizes.audience
        campaigns = self.db.campaigns

        async def sent() -> bool:
            doc = await campaigns.find_one({"_id": campaign}, {"status": 1, "reason": 1})
            if doc["status"] in ("error", "cancelled"):
                raise RuntimeError(f"campaign {doc['status']}: {doc.get('reason')}")
            return bool(doc["status"] in ("sent", "completed"))

        with self.sampler.phase("campaign"):
            async with self.spending(api) as spent:
                started = perf_counter()
                created = await api.call(
                    "POST",
                    "/api/v1/campaigns",
                    expect=201,
                    json={
                        "name": "bench",
                        "message": CAMPAIGN_MESSAGE,
                        "rule": EVERYONE,
                        "vendor": "dummy_vendor",
                    },
                )
                campaign = ObjectId(created["id"])
                await wait_for("the campaign to be sent", sent, timeout=3600)
                seconds = perf_counter() - started
        doc = await campaigns.find_one({"_id": campaign})
        planning = (doc["plannedAt"] - doc["createdAt"]).total_seconds()
        say(
            f"dispatch: {n:,} messages sent in {seconds:.1f} s (planned after "
            f"{planning:.1f} s); copying the logs raw"
        )
        raw = await scratch(self.db, "bench_raw_logs", "communication_log")
        copied, raw_seconds = await copy_timed(
            self.db.communication_log, {"campaignId": str(campaign)}, raw, batch=1000
        )
        assert copied == n, (copied, n)
        self.figures.append(
            rate_figure(
                f"dispatch, {n:,} recipients, no-op vendor (POST until sent)",
                n / seconds,
                n / raw_seconds,
                0.7,
                unit="messages/s",
                limit_is="insert_many of the same log documents, 1,000 a batch",
                seconds=round(seconds, 1),
                planned_after_seconds=round(planning, 1),
                raw_seconds=round(raw_seconds, 1),
                **spent.per(n),
            )
        )
        return str(campaign)

    async def receipts(self, api: Api, campaign: str) -> None:
        ids = [
            d["_id"]
            async for d in self.db.communication_log.find(
                {"campaignId": campaign}, {"_id": 1}, batch_size=5000
            )
        ]
        if self.sizes.single_receipts > self.sizes.batched_receipts:
            raise ValueError("the receipts one per post are some of those in posts of 1,000")
        ids, singles = ids[: self.sizes.batched_receipts], ids[: self.sizes.single_receipts]
        n = len(ids)
        raw_seconds = await self.raw_updates(ids)
        with self.sampler.phase("receipts"):
            batched = [ids[i : i + 1000] for i in range(0, n, 1000)]
            async with self.spending(api) as spent:
                accepted, exact = await self.post_receipts(
                    api, campaign, batched, "SENT", "sent", concurrency=4
                )
            self.figures.append(
                rate_figure(
                    f"receipts, {n:,} in posts of 1,000: accepted",
                    n / accepted,
                    n / raw_seconds,
                    0.7,
                    unit="receipts/s",
                    limit_is="bulk update of the same documents",
                    seconds=round(accepted, 1),
                )
            )
            self.figures.append(
                rate_figure(
                    "  posts of 1,000: reconciled until the stats are exact",
                    n / exact,
                    n / raw_seconds,
                    0.7,
                    unit="receipts/s",
                    seconds=round(exact, 1),
                    **spent.per(n),
                )
            )
            m = len(singles)
            async with self.spending(api) as spent:
                accepted, exact = await self.post_receipts(
                    api, campaign, [[i] for i in singles], "DELIVERED", "delivered", concurrency=16
                )
            self.figures.append(
                rate_figure(
                    f"receipts, {m:,} one per post: accepted",
                    m / accepted,
                    n / raw_seconds,
                    0.7,
                    unit="receipts/s",
                    seconds=round(accepted, 1),
                )
            )
            self.figures.append(
                rate_figure(
                    "  one per post: reconciled until the stats are exact",
                    m / exact,
                    n / raw_seconds,
                    0.7,
                    unit="receipts/s",
                    seconds=round(exact, 1),
                    **spent.per(m),
                )
            )

    async def raw_updates(self, ids: list[str]) -> float:
        """The receipts' limit: the status update of each log, 1,000 a bulk write, on
        the raw copy of the logs."""
        raw = self.db.bench_raw_logs
        at = datetime.now(UTC)
        spent = 0.0
        for start in range(0, len(ids), 1000):
            updates = [
                UpdateOne(
                    {"_id": i},
                    {"$set": {"status": "SENT", "rank": 1, "updatedAt": at, "times.SENT": at}},
                )
                for i in ids[start : start + 1000]
            ]
            started = perf_counter()
            await raw.bulk_write(updates, ordered=False)
            spent += perf_counter() - started
        await self.db.drop_collection("bench_raw_logs")
        return spent

    async def post_receipts(
        self,
        api: Api,
        campaign: str,
        posts: list[list[str]],
        status: str,
        group: str,
        concurrency: int,
    ) -> tuple[float, float]:
        """Signed receipt posts, ``concurrency`` at a time; (seconds until the last 202,
        seconds until the campaign's ``stats.<group>`` counts every one)."""
        queue = list(reversed(posts))
        total = sum(len(p) for p in posts)
        url = f"{self.base}/api/v1/deliveryReceipt/dummy_vendor"

        async def poster() -> None:
            while queue:
                ids = queue.pop()
                now = datetime.now(UTC).isoformat()
                body = msgspec.json.encode(
                    [
                        {
                            "status": status,
                            "timestamp": now,
                            "eventId": f"{status}-{i}",
                            "messageId": i,
                        }
                        for i in ids
                    ]
                )
                headers = signed_headers(
                    RECEIPT_SECRET, f"msg_{uuid.uuid4().hex}", int(time.time()), body
                )
                headers["Content-Type"] = "application/json"
                async with api.http.post(url, data=body, headers=headers) as response:
                    if response.status != 202:
                        raise RuntimeError(
                            f"receipt post: {response.status} {await response.text()}"
                        )

        async def exact() -> bool:
            doc = await self.db.campaigns.find_one({"_id": ObjectId(campaign)}, {"stats": 1})
            return bool(doc.get("stats", {}).get(group, 0) >= total)

        started = perf_counter()
        await asyncio.gather(*(poster() for _ in range(concurrency)))
        accepted = perf_counter() - started
        say(f"receipts: {total:,} {status} accepted in {accepted:.1f} s")
        await wait_for(f"the {group} count to be exact", exact, timeout=3600)
        reconciled = perf_counter() - started
        say(f"  reconciled after {reconciled:.1f} s")
        return accepted, reconciled

    async def clicks(self, api: Api, campaign: str) -> None:
        """People clicking the sent campaign's links (``bench.clicks``): ``clicks`` of
        its messages clicked once each through the redirect, against a bare redirect;
        then as many clicks on other messages queued at once for the tracking actor,
        against the raw database doing the same updates. Each clicked message is then
        checked to be CLICKED with one click on its link."""
        n, clients = self.sizes.clicks, self.sizes.click_clients
        logs = [
            d
            async for d in self.db.communication_log.find(
                {"campaignId": campaign}, {"message": 1}, batch_size=5000, limit=2 * n
            )
        ]
        if len(logs) < 2 * n:
            raise RuntimeError(f"clicks: {len(logs):,} messages sent, {2 * n:,} needed")
        through, queued = logs[:n], [(str(d["_id"]), i % 2) for i, d in enumerate(logs[n:])]
        clicks = []
        for i, log in enumerate(through):
            paths = CLICK_LINK.findall(log["message"])
            if len(paths) != len(LINKS):
                raise RuntimeError(f"message {log['_id']} has {len(paths)} click links: {paths}")
            clicks.append(Click(paths[i % 2], LINKS[i % 2]))
        stream = StreamNames.for_prefix(self.db.name).tracking
        redis = Redis.from_url(self.redis_url)

        async def applied() -> bool:
            return await caught_up(redis, stream)

        try:
            raw_seconds, raw_cpu = await self.raw_click_updates(queued)
            with self.sampler.phase("clicks"):
                async with self.spending(api) as redirecting:
                    started = perf_counter()
                    answered = await click_all(api.http, self.base, clicks, clients)
                    await wait_for("the clicks to be applied", applied, timeout=600, every=0.05)
                    through_seconds = perf_counter() - started
                if answered.wrong:
                    raise RuntimeError(
                        f"clicks: {answered.wrong} answers not a 302 to the campaign's link "
                        f"({answered.statuses})"
                    )
                await self.check_clicked([(str(d["_id"]), i % 2) for i, d in enumerate(through)])
                async with self.spending(api) as applying:
                    started = perf_counter()
                    await queue_clicks(redis, stream, queued)
                    await wait_for("the clicks to be applied", applied, timeout=600, every=0.05)
                    applied_seconds = perf_counter() - started
                await self.check_clicked(queued)
            bare_stream = f"bench:{self.db.name}:bare-clicks"
            async with bare_redirect(self.work, self.redis_url, bare_stream) as (pid, bare_base):
                cpu_before = cpu_seconds(pid)
                bare = await click_all(api.http, bare_base, clicks, clients)
                bare_cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6 / n
            await redis.delete(bare_stream)
        finally:
            await redis.aclose()
        say(
            f"clicks: {n:,} redirects at {answered.per_second:,.0f}/s (bare aiohttp "
            f"{bare.per_second:,.0f}/s), applied {through_seconds - answered.seconds:.2f} s after "
            f"the last; {n:,} queued at once applied in {applied_seconds:.2f} s (raw "
            f"{raw_seconds:.2f} s)"
        )
        self.figures.append(
            rate_figure(
                f"clicks redirect, {n:,} GETs of /c/<token> by {clients} clients: answered",
                answered.per_second,
                bare.per_second,
                REDIRECT_SHARE,
                unit="requests/s",
                limit_is="a bare aiohttp app answering the same GETs with one XADD and a 302",
                statuses=answered.statuses,
                answering_seconds=round(answered.seconds, 2),
                # from the first click to the last applied: what a click costs in all
                seconds=round(through_seconds, 2),
                **redirecting.per(n),
            )
        )
        p99 = quantile(answered.latencies, 0.99) * 1000
        self.figures.append(
            Figure(
                "  the redirect's latency, p50 / p99 ms",
                round(quantile(answered.latencies, 0.5) * 1000, 1),
                REDIRECT_P99_MS,
                "ms",
                None,
                f"p99 <= {REDIRECT_P99_MS:.0f}",
                p99 <= REDIRECT_P99_MS,
                {
                    "p99_ms": round(p99, 1),
                    "max_ms": round(max(answered.latencies) * 1000, 1),
                    "bare_p50_ms": round(quantile(bare.latencies, 0.5) * 1000, 1),
                    "bare_p99_ms": round(quantile(bare.latencies, 0.99) * 1000, 1),
                },
            )
        )
        # A click's whole cost, from the first click to the last applied: the redirect's
        # request, its share of a batch's one update per message (each of these
        # messages is clicked once: one update a click), and the recounts the tracking
        # actor asks of the receipts actor, at most one a RECOUNT_GAP and one at each
        # end of the stretch, and one the phase before asked for that lands in it, of
        # RECOUNT_WRITES writes each (the quick run's 200 clicks saw 15 writes more
        # than 200, against a bound of 12 without that one).
        writes = redirecting.documents / n
        writes_limit = 1 + RECOUNT_WRITES * (3 + through_seconds / RECOUNT_GAP) / n
        self.figures.append(
            Figure(
                "  database writes per 1,000 clicks, redirect and apply",
                round(writes * 1000, 1),
                round(writes_limit * 1000, 1),
                "writes",
                round(writes / writes_limit, 3),
                f"<= {writes_limit * 1000:,.0f}",
                writes <= writes_limit,
                {"limit_is": "one update a click, and the recounts' writes"},
            )
        )
        # crmd's CPU for a click (its request, its share of the tracking actor's batch
        # and of the recounts) against what the bare app spends on its redirect and
        # pymongo on the raw update, each part by the share its rate is held to.
        raw_cpu_us = raw_cpu * 1e6 / n
        cpu_us = redirecting.cpu * 1e6 / n
        cpu_limit = bare_cpu_us / REDIRECT_SHARE + raw_cpu_us / APPLIED_SHARE
        self.figures.append(
            Figure(
                "  crmd CPU per click, redirect and apply (µs)",
                round(cpu_us, 1),
                round(cpu_limit, 1),
                "µs",
                round(cpu_us / cpu_limit, 3),
                f"<= {cpu_limit:,.0f}",
                cpu_us <= cpu_limit,
                {
                    "limit_is": f"the bare app's CPU per redirect / {REDIRECT_SHARE} + "
                    f"pymongo's per raw update / {APPLIED_SHARE}",
                    "bare_cpu_us_per_request": round(bare_cpu_us, 1),
                    "raw_cpu_us_per_update": round(raw_cpu_us, 1),
                    "applying_cpu_us_per_click": applying.per(n)["cpu_us_per_item"],
                },
            )
        )
        self.figures.append(
            rate_figure(
                f"clicks applied, {n:,} queued at once (until acked)",
                n / applied_seconds,
                n / raw_seconds,
                APPLIED_SHARE,
                unit="clicks/s",
                limit_is=f"bulk update of the same logs, an UpdateOne a log, {APPLY_BATCH} a write",
                seconds=round(applied_seconds, 2),
                raw_seconds=round(raw_seconds, 2),
                **applying.per(n),
            )
        )

    async def raw_click_updates(self, clicks: list[tuple[str, int]]) -> tuple[float, float]:
        """The tracking actor's limit: each clicked log's status, rank, time and link
        count in one UpdateOne, ``APPLY_BATCH`` a bulk write, on a raw copy of the logs
        (copied untimed). Returns the seconds and this process's CPU seconds the bulk
        writes took."""
        raw = await scratch(self.db, "bench_raw_clicks", "communication_log")
        # (by _id alone, a few at a time, as crmd asks: SecantusDB tests each document
        # against the whole $in list, and 5,000 ids in one with two more fields took minutes)
        found = find_in(self.db.communication_log, "_id", [log_id for log_id, _ in clicks])
        await raw.insert_many([doc async for doc in found], ordered=False)
        rank, spent, cpu = RANK[MessageStatus.CLICKED], 0.0, 0.0
        for start in range(0, len(clicks), APPLY_BATCH):
            at = datetime.now(UTC)
            updates = [
                UpdateOne(
                    {"_id": log_id},
                    {
                        "$set": {"status": "CLICKED", "rank": rank, "updatedAt": at},
                        "$min": {"times.CLICKED": at},
                        "$inc": {f"clicks.{link}": 1},
                    },
                )
                for log_id, link in clicks[start : start + APPLY_BATCH]
            ]
            started, cpu_started = perf_counter(), time.process_time()
            await raw.bulk_write(updates, ordered=False)
            spent += perf_counter() - started
            cpu += time.process_time() - cpu_started
        await self.db.drop_collection("bench_raw_clicks")
        return spent, cpu

    async def check_clicked(self, clicks: list[tuple[str, int]]) -> None:
        """Each message CLICKED, with one click on its link."""
        link_of = dict(clicks)
        applied = 0
        projection = {"status": 1, "clicks": 1}
        async for doc in find_in(self.db.communication_log, "_id", link_of, projection=projection):
            counted = (doc.get("clicks") or {}).get(str(link_of[str(doc["_id"])]))
            applied += doc["status"] == "CLICKED" and counted == 1
        if applied != len(clicks):
            raise RuntimeError(f"clicks: {applied:,} of {len(clicks):,} applied")

    async def flows(self, api: Api) -> None:
        """Events in, customers through a flow, and timers with many waiting
        (``bench.flows``)."""
        n, waiting = self.sizes.flows, self.sizes.flow_waiting
        with self.sampler.phase("flows"):
            m = await measure_flows(api, self.db, self.sampler.pid, self.work, n, waiting, say)
        self.figures.append(
            rate_figure(
                f"events accepted, {n:,} posted {EVENT_BATCH:,} a request",
                n / m.accept_seconds,
                n / m.raw_seconds,
                EVENTS_ACCEPTED_SHARE,
                unit="events/s",
                limit_is="insert_many of the same event documents, as many a write, into an "
                "empty collection with the same indexes",
                crmd_is="POST /api/v1/events until its 202s",
                **m.event_spent.per(n),
            )
        )
        self.figures.append(
            rate_figure(
                f"events stored, {n:,}",
                n / m.store_seconds,
                n / m.raw_seconds,
                EVENTS_STORED_SHARE,
                unit="events/s",
                limit_is="the same raw insert_many",
                crmd_is="from the first POST until all are in the events collection",
            )
        )
        self.figures.append(
            Figure(
                f"flow steps, {n:,} customers through trigger, wait and send",
                round(m.steps / m.step_seconds, 1),
                None,
                "steps/s",
                None,
                "reported",
                None,
                {
                    "steps": m.steps,
                    "seconds_less_the_wait": round(m.step_seconds, 2),
                    **m.step_spent.per(m.steps),
                },
            )
        )
        self.figures.append(
            Figure(
                f"flow timer lag p99, {waiting:,} customers waiting",
                round(m.lag_p99, 3),
                TIMER_LAG_P99,
                "s",
                None,
                f"<= {TIMER_LAG_P99}",
                m.lag_p99 <= TIMER_LAG_P99,
                {"p50": round(m.lag_p50, 3), "max": round(m.lag_max, 3)},
            )
        )

    async def attribution(self, api: Api, bare: Api) -> None:
        """Orders credited to the campaigns sent before them as they are stored
        (``bench.attribution``): the same orders uploaded by a user with two sent
        campaigns and by one with none; the difference is the attribution's writes and
        CPU. Its speed, ``attribute`` timed over the same chunks again, is set against
        the raw bulk upsert of the attribution documents it stored."""
        n = self.sizes.attribution
        measured = await measure_attribution(
            api, bare, self.db, self.sampler.pid, self.work, n, CHUNK_ROWS, say
        )
        mine, theirs = measured.with_campaigns, measured.without
        attributed = sum(measured.expected.values())
        # What attribution writes: its documents and the campaigns' marks and sums (the
        # user without campaigns writes neither). The difference in all crmd's writes
        # is reported beside: it also holds the clock's ticks of the longer stretch.
        own = {c: mine.writes.get(c, 0.0) - theirs.writes.get(c, 0.0) for c in WRITTEN}
        writes = sum(own.values()) / attributed
        cpu_us = (mine.cpu - theirs.cpu) * 1e6 / n

        def per_order(cost: dict[str, float], collection: str) -> float:
            return round(cost.get(collection, 0.0) / n, 3)

        say(
            f"  {attributed:,} attributed; the upload took {mine.seconds - theirs.seconds:.1f} s "
            f"more than without, attribute() {measured.attribute_seconds:.1f} s (raw upserts "
            f"{measured.raw_seconds:.1f} s); {writes:.3f} writes an attributed order, "
            f"{cpu_us:,.0f} µs of crmd CPU an order"
        )
        self.figures.append(
            rate_figure(
                f"attribution, {n:,} orders after a {n:,}-recipient campaign and another",
                attributed / measured.attribute_seconds,
                attributed / measured.raw_seconds,
                ATTRIBUTED_SHARE,
                unit="orders/s",
                limit_is=f"bulk upsert by _id of the same attribution documents, {CHUNK_ROWS} "
                "a write, into an empty collection with the same indexes",
                crmd_is=f"crmd's attribute() over the stored orders again, {CHUNK_ROWS} a "
                "chunk, their attributions removed first",
                orders=n,
                attributed=attributed,
                due=measured.expected,
                seconds=round(measured.attribute_seconds, 2),
                raw_seconds=round(measured.raw_seconds, 2),
                attribute_cpu_us_per_order=round(measured.attribute_cpu * 1e6 / n, 1),
                upload_seconds_more=round(mine.seconds - theirs.seconds, 2),
                # per attributed order, and per order: the attribution's own, beyond the
                # same upload with no campaign
                writes_per_item=round(writes, 3),
                cpu_us_per_item=round(cpu_us, 1),
                writes=own,
                all_writes_difference=mine.all_writes - theirs.all_writes,
                logs_read_per_order=per_order(mine.reads, "communication_log"),
                attributions_read_per_order=per_order(mine.reads, "attributions"),
                database_seconds=mine.database,
                without_database_seconds=theirs.database,
            )
        )
        # One write an attributed order, the marks of the campaigns each chunk touched
        # and the clock's sums (one write a campaign a tick, from the first chunk until
        # the results are summed).
        ticks = 2 + mine.seconds / CLOCK_SECONDS
        marks = measured.campaigns * (measured.chunks + ticks)
        limit = 1 + marks / attributed
        self.figures.append(
            Figure(
                "  database writes per attributed order, attribution's own",
                round(writes, 3),
                round(limit, 3),
                "writes",
                round(writes / limit, 3),
                f"<= {limit:.3f}",
                writes <= limit,
                {
                    "limit_is": "one upsert an attributed order, and the campaigns' marks and sums",
                    "writes_by_collection": mine.writes,
                    "without_by_collection": theirs.writes,
                },
            )
        )
        raw_cpu_us = measured.raw_cpu * 1e6 / attributed
        cpu_limit = raw_cpu_us * attributed / n / ATTRIBUTED_SHARE
        self.figures.append(
            Figure(
                "  crmd CPU per order, attribution's own (µs)",
                round(cpu_us, 1),
                round(cpu_limit, 1),
                "µs",
                round(cpu_us / cpu_limit, 3),
                f"<= {cpu_limit:,.0f}",
                cpu_us <= cpu_limit,
                {
                    "limit_is": f"pymongo's CPU per raw upsert / {ATTRIBUTED_SHARE}, "
                    "over every order",
                    "raw_cpu_us_per_upsert": round(raw_cpu_us, 1),
                },
            )
        )
        self.figures.append(
            rate_figure(
                "  the orders upload with attribution, against without",
                n / mine.seconds,
                n / theirs.seconds,
                ATTRIBUTED_UPLOAD_SHARE,
                limit_is="the same upload by a user with the same customers and no campaign",
                seconds=round(mine.seconds, 2),
                without_seconds=round(theirs.seconds, 2),
                # everything the upload cost, per order, with and without
                writes_per_item=round(mine.all_writes / n, 3),
                cpu_us_per_item=round(mine.cpu * 1e6 / n, 1),
                without_writes_per_order=round(theirs.all_writes / n, 3),
                without_cpu_us_per_order=round(theirs.cpu * 1e6 / n, 1),
            )
        )

    async def load(self, api: Api) -> None:
        """Thirty clients at the API during an import (``bench.load``)."""

        async def quiet() -> None:
            async def idle() -> bool:
                jobs = await api.call("GET", "/api/v1/uploads")
                return not any(j["status"] in ACTIVE for j in jobs["items"])

            await wait_for("the imports to finish", idle, timeout=3600, every=1)

        sizes = self.sizes.load
        measured = await measure_load(
            api, self.work, sizes, self.sampler.pid, self.database_pid, say, quiet
        )
        overall = measured["all"]
        routes = measured["routes"]
        say(
            f"  crmd {measured['crmd_cores']} cores, the database {measured['database_cores']} "
            f"(alone: {measured['alone_database_cores']}); the database's time, commands and "
            f"documents read by source: {measured['database_by_source']}"
        )
        for route, figure in routes.items():
            say(
                f"  {route}: p50 {figure['p50_ms']} ms, p99 {figure['p99_ms']} ms, "
                f"{figure['requests']} requests {figure['statuses']}, "
                f"{figure['commands_per_request']} commands and "
                f"{figure['documents_read_per_request']} documents read, "
                f"{figure['database_ms_per_request']} ms of database a request"
            )
        met = (
            overall["p50_ms"] <= P50_LIMIT_MS
            and all(r["p99_ms"] <= P99_LIMIT_MS for r in routes.values())
            and overall["errors"] == 0
            and overall["shed"] <= SHED_LIMIT
        )
        self.figures.append(
            Figure(
                f"under load: {sizes.clients} clients during a {sizes.rows:,}-row import, "
                "p50 / p99 ms",
                overall["p50_ms"],
                P50_LIMIT_MS,
                "ms",
                None,
                f"p50 <= {P50_LIMIT_MS:.0f}",
                met,
                {
                    **overall,
                    "crmd_cores": measured["crmd_cores"],
                    "database_cores": measured["database_cores"],
                    "alone_database_cores": measured["alone_database_cores"],
                    "database_by_source": measured["database_by_source"],
                    "seconds": measured["seconds"],
                },
            )
        )
        for route, figure in routes.items():
            self.figures.append(
                Figure(
                    f"  {route}",
                    figure["p50_ms"],
                    P99_LIMIT_MS,
                    "ms",
                    None,
                    f"p99 <= {P99_LIMIT_MS:.0f}",
                    figure["p99_ms"] <= P99_LIMIT_MS and figure["errors"] == 0,
                    figure,
                )
            )
        alone, loaded = measured["alone"], measured["loaded"]
        self.figures.append(
            rate_figure(
                "  the import under that load, against alone",
                loaded["rows"] / loaded["seconds"],
                alone["rows"] / alone["seconds"],
                IMPORT_SHARE,
                limit_is="the same import with no clients",
                finished=loaded["done"],
            )
        )

    def memory(self) -> None:
        peaks, bases = self.sampler.peaks, self.sampler.baselines
        figures: list[tuple[str, float]] = [
            (f"crmd peak RSS during the {name} (MB)", peaks[phase])
            for name, phase in (
                ("upload", "upload"),
                ("campaign", "campaign"),
                ("receipts", "receipts"),
                ("clicks", "clicks"),
            )
            if phase in peaks
        ]
        if "campaign" in peaks:
            grown = max(0, peaks["campaign"] - bases["campaign"])
            at_1m = bases["campaign"] + grown * (1_000_000 / self.sizes.audience)
            figures.append(("  campaign extrapolated to 1M recipients, linearly (MB)", at_1m))
        for name, value in figures:
            mb = value / MB
            self.figures.append(
                Figure(
                    name,
                    round(mb, 1),
                    MEMORY_LIMIT_MB,
                    "MB",
                    round(mb / MEMORY_LIMIT_MB, 3),
                    f"<= {MEMORY_LIMIT_MB}",
                    mb <= MEMORY_LIMIT_MB,
                )
            )


async def versions(urls_redis: str, db: Any) -> dict[str, str]:
    redis = Redis.from_url(urls_redis)
    try:
        info = await redis.info("server")
    finally:
        await redis.aclose()
    build = await db.client.admin.command("buildInfo")
    return {
        "redis": str(info.get("redis_version")),
        "database": str(build.get("version")),
        "database_name": str(build.get("gitVersion") or build.get("name") or ""),
    }


def machine() -> dict[str, Any]:
    memory = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) * 1024
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "crmd": crmd.__version__,
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def scaling_figures(results: list[dict[str, Any]]) -> list[Figure]:
    """Each worker count's speed against one worker's: the ratio is the speed-up."""
    figures = []
    for key, what, unit in (
        ("rows_per_s", "ingestion (POST until persisted)", "rows/s"),
        ("messages_per_s", "dispatch, no-op vendor (POST until sent)", "messages/s"),
    ):
        one = results[0][key]
        for result in results:
            workers = result["workers"]
            figures.append(
                Figure(
                    f"scaling: {what}, {workers} worker process{'es' if workers > 1 else ''}",
                    round(result[key], 1),
                    round(one, 1),
                    unit,
                    round(result[key] / one, 3),
                    "speed-up",
                    None,
                    {"workers": workers},
                )
            )
    return figures


def rows_of(figures: list[Figure]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        ("figure", "crmd", "limit", "unit", "ratio", "target", "", "writes/item", "CPU µs/item")
    ]
    for f in figures:
        crmd_text = f"{f.crmd:,.1f}"
        if f.unit == "ms":
            crmd_text = f"{f.crmd:,.1f} / {f.detail['p99_ms']:,.1f}"
        writes, cpu = f.detail.get("writes_per_item"), f.detail.get("cpu_us_per_item")
        rows.append(
            (
                f.name,
                crmd_text,
                "" if f.limit is None else f"{f.limit:,.1f}",
                f.unit,
                "" if f.ratio is None else f"{f.ratio:.2f}",
                f.target,
                {True: "met", False: "BELOW", None: ""}[f.met],
                "" if writes is None else f"{writes:.2f}",
                "" if cpu is None else f"{cpu:,.0f}",
            )
        )
    return rows


def table(figures: list[Figure]) -> str:
    rows = rows_of(figures)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """The table as docs/benchmarks.md shows it, with the machine it came from."""
    rows = rows_of([msgspec.convert(f, Figure) for f in result["figures"]])
    lines = [f"| {' | '.join(c.strip().replace('|', '/') for c in row)} |" for row in rows]
    lines.insert(1, "|---" + "|---:" * 5 + "|---|---:|---:|")
    m = result["machine"]
    lines.append(
        f"\n{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python "
        f"{m['python']}, Redis {m['redis']}, database {m['database']} "
        f"({result['servers']} servers); crmd {m['crmd']}; {result['when'][:10]}, "
        f"{result['seconds'] / 60:.0f} minutes; {result['mode']} sizes ({sizes_said(result)})."
    )
    if result.get("profiles"):
        lines.append(f"\n{profiles_markdown(result['profiles'])}")
    return "\n".join(lines)


def sizes_said(result: dict[str, Any]) -> str:
    """The run's sizes in words: which samples its figures are of."""
    sizes = result["sizes"]
    return (
        f"{sizes['upload_rows']:,} rows imported, {sizes['audience']:,} customers previewed "
        f"and sent to, {sizes.get('batched_receipts', sizes['audience']):,} receipts in "
        f"posts, {sizes['attribution']:,} orders attributed, {sizes['flows']:,} "
        f"customers through a flow, {sizes['load']['rows']:,} rows under load, "
        f"{sizes['scaling_rows']:,} scaled"
    )


async def measure(
    base: str,
    mongodb: str,
    redis: str,
    database: str,
    sampler: MemorySampler,
    sizes: Sizes,
    work: Path,
    phases: set[str],
    database_pid: int | None,
    profiler: Profiler,
) -> dict[str, Any]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(mongodb, tz_aware=True, maxIdleTimeMS=30_000)
    bench = Bench(base, client[database], sampler, sizes, work, database_pid, redis)
    seconds: dict[str, float] = {}

    @contextmanager
    def phase(name: str) -> Iterator[None]:
        with profiler.phase(name):  # (timed inside: not py-spy writing its file)
            started = time.monotonic()
            yield
            seconds[name] = round(time.monotonic() - started, 1)

    try:
        async with (
            signed_in_api(base, "importer@bench.example.com") as importer,
            signed_in_api(base, "sender@bench.example.com") as sender,
            signed_in_api(base, "team@bench.example.com") as team,
        ):
            # The 1M-row import last, so the previews count over the 100k customers of
            # their user, not next to a million of another's.
            if phases & {"previews", "dispatch", "receipts", "clicks", "console"}:
                started = time.monotonic()
                user = await bench.audience(sender)
                seconds["audience"] = round(time.monotonic() - started, 1)
            if "previews" in phases:
                with phase("previews"):
                    await bench.previews(sender, user)
            if phases & {"dispatch", "receipts", "clicks", "console"}:
                with phase("dispatch"):
                    campaign = await bench.dispatch(sender)
            if "receipts" in phases:
                with phase("receipts"):
                    await bench.receipts(sender, campaign)
            if "clicks" in phases:
                with phase("clicks"):
                    await bench.clicks(sender, campaign)
            if "console" in phases:
                with phase("console"):
                    await bench.console(sender, campaign)
            if "attribution" in phases:
                async with (
                    signed_in_api(base, "attribution@bench.example.com") as attributed,
                    signed_in_api(base, "orders@bench.example.com") as unattributed,
                ):
                    with phase("attribution"):
                        await bench.attribution(attributed, unattributed)
            if "flows" in phases:
                async with signed_in_api(base, "flows@bench.example.com") as flows:
                    with phase("flows"):
                        await bench.flows(flows)
            if "load" in phases:
                with phase("load"):
                    await bench.load(team)
            if "ingestion" in phases:
                with phase("ingestion"):
                    await bench.ingestion(importer)
        bench.memory()
        return {
            "versions": await versions(redis, bench.db),
            "notes": bench.notes,
            "figures": [msgspec.to_builtins(f) for f in bench.figures],
            "profiles": profiler.results(),
            "phaseSeconds": seconds,
        }
    finally:
        await client.drop_database(database)
        await client.close()


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a hundred times smaller: a smoke test")
    size.add_argument(
        "--full",
        action="store_true",
        help="the full sizes (1M rows, 100k customers), over two hours; the default run "
        "takes smaller samples, for about 20 minutes",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.json")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"a comma-separated subset of {','.join(PHASES)} (for profiling)",
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="record a py-spy profile of crmd a phase, beside --out "
        "(the default, but in a quick run)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="RESULTS",
        help="print the table of a results.json as Markdown, and exit",
    )
    args = parser.parse_args(argv)
    phases = set(args.phases.split(","))
    if not phases <= set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(phases - set(PHASES)))}")
    return args


def sizes_for(args: argparse.Namespace) -> tuple[str, Sizes]:
    """The run's mode and its sizes: ``budget`` unless ``--full`` or ``--quick``."""
    if args.quick:
        return "quick", Sizes().quick()
    if args.full:
        return "full", Sizes()
    return "budget", Sizes().budget()


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.markdown:
        sys.stdout.write(markdown(msgspec.json.decode(args.markdown.read_bytes())) + "\n")
        return 0
    phases = set(args.phases.split(","))
    mode, sizes = sizes_for(args)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crmd-bench-") as tmp:
        work = Path(tmp)
        database = f"bench{uuid.uuid4().hex[:8]}"
        with database_servers(work) as running:
            urls, servers = running.urls, running.kind
            say(f"servers ({servers}) up; starting crmd")
            with crmd_process(work, urls, database, sizes.upload_rows) as (process, base):
                sampler = MemorySampler(process.pid)
                sampler.start()
                profiling = not args.quick if args.profile is None else args.profile
                profiler = Profiler(process.pid, args.out.parent / PROFILES if profiling else None)
                try:
                    measured = asyncio.run(
                        measure(
                            base,
                            urls.mongodb,
                            urls.redis,
                            database,
                            sampler,
                            sizes,
                            work,
                            phases,
                            running.database_pid,
                            profiler,
                        )
                    )
                finally:
                    sampler.stop()
            if "scaling" in phases:
                say(f"scaling: {sizes.scaling_rows:,} rows and messages, 1 to 3 workers")
                started_scaling = time.monotonic()
                scaled = measure_scaling(work, urls, database, sizes.scaling_rows)
                measured["phaseSeconds"]["scaling"] = round(time.monotonic() - started_scaling, 1)
                measured["figures"] += [msgspec.to_builtins(f) for f in scaling_figures(scaled)]
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "sizes": msgspec.to_builtins(sizes),
        "servers": servers,
        "machine": {**machine(), **measured.pop("versions")},
        "seconds": round(time.monotonic() - started, 1),
        **measured,
    }
    args.out.write_text(msgspec.json.format(msgspec.json.encode(result), indent=2).decode() + "\n")
    figures = [msgspec.convert(f, Figure) for f in result["figures"]]
    m = result["machine"]
    sys.stdout.write(
        f"{table(figures)}\n\n{m['cores']} cores ({m['cpu']}), "
        f"{m['memory_gib']} GiB, Python {m['python']}, Redis {m['redis']}, "
        f"database {m['database']}; {result['seconds']:.0f} s; "
        f"written to {args.out}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
