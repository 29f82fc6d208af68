"""The load figure: thirty people at the API while a 200,000-row import runs.

One team (one tenant) imports a customers file alone, and then a second one of the same
size while thirty clients read that same tenant's lists, previews and dashboard. Each
client sends a request, waits for its answer, thinks for 0.5 to 1.5 seconds (a person
at the console, a dashboard refreshing), and sends the next, from a fixed mix. The
figures: each route's p50 and p99 (target: p99 <= 1 s on every route, p50 <= 100 ms
over all), the statuses (no 5xx; at most a quarter 429), the import's speed under the
load against its speed alone (>= 0.5), the CPU crmd and the database spent, and what each
route cost the database per request (commands and documents read, from crmd's own
``crmd_mongo_commands_total`` and ``crmd_mongo_documents_read_total``).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from time import perf_counter
from typing import Any
from urllib.parse import quote

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from bench.data import write_customers, write_orders
from bench.server import Api, cpu_seconds, upload_csv

THINK = (0.5, 1.5)
P99_LIMIT_MS = 1000.0
P50_LIMIT_MS = 100.0
SHED_LIMIT = 0.25
IMPORT_SHARE = 0.5

PREVIEW_RULES = (
    "spend > 50000",
    "spend > 10000 AND visits < 3",
    "lastActive < 90d",
    'location in ("Delhi", "Pune")',
    'name contains "ra" OR attrs.tier = "gold"',
    "visits >= 20",
    "spend > 20000 AND lastActive > 30d",
    'attrs.tier = "silver"',
)
"""What people type into the rule box: the five preview rules of the previews figure and
three more, each typed by several people during the run."""
FILTER_RULES = ("spend > 40000 AND visits > 3", 'location = "Surat"', "visits < 2")


class LoadSizes(msgspec.Struct, frozen=True):
    rows: int = 200_000
    clients: int = 30
    max_seconds: float = 900.0
    """The load stops here even if the import has not finished: its speed is then the
    rows it stored meanwhile."""


class Answer(msgspec.Struct):
    route: str
    status: int
    seconds: float
    at: float = 0.0
    """When it was sent, in seconds from the start of the load."""


class Request(msgspec.Struct, frozen=True):
    route: str
    """As crmd's metrics name it: ``GET /api/v1/customers``."""
    method: str
    path: str
    body: Any = None


def next_request(rng: random.Random, cursors: list[str]) -> Request:
    """One request of the mix: lists (a first page, or the next one), filtered lists,
    previews and the dashboard, about as often as a console's visitors ask for them."""
    pick = rng.choices(
        ("customers", "filtered", "orders", "campaigns", "uploads", "segments", "preview", "dash"),
        weights=(3, 2, 1, 2, 1, 1, 3, 3),
    )[0]
    if pick == "customers":
        path = "/api/v1/customers?limit=50"
        if cursors and rng.random() < 0.4:
            path += f"&cursor={rng.choice(cursors)}"
        return Request("GET /api/v1/customers", "GET", path)
    if pick == "filtered":
        rule = quote(rng.choice(FILTER_RULES))
        return Request("GET /api/v1/customers", "GET", f"/api/v1/customers?limit=50&rule={rule}")
    if pick == "preview":
        body = {"rule": rng.choice(PREVIEW_RULES)}
        return Request("POST /api/v1/segments/preview", "POST", "/api/v1/segments/preview", body)
    path = {
        "orders": "/api/v1/orders?limit=50",
        "campaigns": "/api/v1/campaigns",
        "uploads": "/api/v1/uploads",
        "segments": "/api/v1/segments",
        "dash": "/api/v1/dashboard-summary",
    }[pick]
    return Request(f"GET {path.split('?')[0]}", "GET", path)


async def client(
    api: Api,
    seed: int,
    stop: asyncio.Event,
    answers: list[Answer],
    cursors: list[str],
    origin: float = 0.0,
) -> None:
    rng = random.Random(seed)  # noqa: S311 - a made-up mix
    await asyncio.sleep(rng.uniform(0, THINK[1]))  # not thirty at the same instant
    while not stop.is_set():
        request = next_request(rng, cursors)
        started = perf_counter()
        async with api.http.request(
            request.method, api.base + request.path, headers=api.headers, json=request.body
        ) as response:
            body = await response.read()
        answers.append(
            Answer(request.route, response.status, perf_counter() - started, started - origin)
        )
        if response.status == 200 and request.path == "/api/v1/customers?limit=50":
            cursor = msgspec.json.decode(body).get("cursor")
            if cursor and len(cursors) < 50:
                cursors.append(cursor)
        await asyncio.sleep(rng.uniform(*THINK))


def cost_by_source(metrics_text: str) -> dict[str, dict[str, float]]:
    """``{source: {"commands", "read", "seconds"}}``: the commands, the documents read
    and the database's answering time of each source, from crmd's ``/metrics``."""
    cost: dict[str, dict[str, float]] = defaultdict(
        lambda: {"commands": 0.0, "read": 0.0, "seconds": 0.0}
    )
    names = {
        "crmd_mongo_commands": "commands",
        "crmd_mongo_documents_read": "read",
        "crmd_mongo_seconds": "seconds",
    }
    for family in text_string_to_metric_families(metrics_text):
        key = names.get(family.name)
        if key is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                cost[sample.labels["source"]][key] += sample.value
    return dict(cost)


async def metrics_text(api: Api) -> str:
    async with api.http.get(api.base + "/metrics") as response:
        return await response.text()


def quantile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


class Imported(msgspec.Struct):
    rows: int
    seconds: float
    done: bool

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


async def import_file(
    api: Api,
    path: Path,
    rows: int,
    until: Callable[[], bool] = lambda: False,
    kind: str = "customers",
) -> Imported:
    """POST the file and wait until it is stored, or until ``until()``; the rows stored
    and the seconds from the POST."""
    started = perf_counter()
    upload_id, _ = await upload_csv(api, path, kind)
    persisted = 0
    while True:
        job = await api.call("GET", f"/api/v1/uploads/{upload_id}")
        if job["status"] == "failed":
            raise RuntimeError(f"upload failed: {job.get('reason')}")
        persisted = job["rows"].get("persisted", 0)
        if job["status"] == "done":
            return Imported(rows, perf_counter() - started, True)
        if until():
            return Imported(persisted, perf_counter() - started, False)
        await asyncio.sleep(0.5)


async def measure_load(
    api: Api,
    work: Path,
    sizes: LoadSizes,
    crmd_pid: int,
    database_pid: int | None,
    say: Callable[[str], None],
    wait_quiet: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    """The figure's measurements (see the module's docstring)."""
    first, second = work / "load-a.csv", work / "load-b.csv"
    write_customers(first, sizes.rows, "la", seed=21)
    write_customers(second, sizes.rows, "lb", seed=22)
    orders = work / "load-orders.csv"
    write_orders(orders, sizes.rows // 10, "la", sizes.rows, seed=23)
    say(f"load: importing {sizes.rows:,} customers alone")
    cpu_alone = cpu_seconds(database_pid) if database_pid else 0.0
    alone = await import_file(api, first, sizes.rows)
    alone_database_cores = (
        round((cpu_seconds(database_pid) - cpu_alone) / alone.seconds, 2) if database_pid else None
    )
    say(f"  alone: {alone.rate:,.0f} rows/s; then {sizes.rows // 10:,} orders and a few campaigns")
    await import_file(api, orders, sizes.rows // 10, kind="orders")
    for n in range(5):
        await api.call(
            "POST",
            "/api/v1/campaigns",
            expect=201,
            json={"name": f"load {n}", "message": "Hi", "rule": "spend > 1", "draft": True},
        )
    await api.call("POST", "/api/v1/segments", expect=201, json={"rule": "spend > 10000"})
    await wait_quiet()

    say(f"  {sizes.clients} clients for the length of a second {sizes.rows:,}-row import")
    answers: list[Answer] = []
    cursors: list[str] = []
    stop = asyncio.Event()
    before = cost_by_source(await metrics_text(api))
    cpu_before = (cpu_seconds(crmd_pid), cpu_seconds(database_pid) if database_pid else 0.0)
    started = perf_counter()
    clients = [
        asyncio.create_task(client(api, seed, stop, answers, cursors, started))
        for seed in range(sizes.clients)
    ]
    deadline = time.monotonic() + sizes.max_seconds
    try:
        loaded = await import_file(
            api, second, sizes.rows, until=lambda: time.monotonic() > deadline
        )
    finally:
        stop.set()
        await asyncio.gather(*clients)
    seconds = perf_counter() - started
    crmd_cpu = cpu_seconds(crmd_pid) - cpu_before[0]
    database_cpu = cpu_seconds(database_pid) - cpu_before[1] if database_pid else None
    after = cost_by_source(await metrics_text(api))
    say(
        f"  under load: {loaded.rate:,.0f} rows/s ({loaded.rate / alone.rate:.2f} of alone), "
        f"{len(answers):,} requests in {seconds:.0f} s"
    )
    if os.environ.get("CRMD_BENCH_ANSWERS"):  # every answer, to study (not a figure)
        where = Path(os.environ["CRMD_BENCH_ANSWERS"])
        await asyncio.to_thread(where.write_bytes, msgspec.json.encode(answers))
    if not loaded.done:
        say("  (the load stopped at its time limit; waiting for the import to finish)")
        await wait_quiet()
    return {
        "alone": msgspec.to_builtins(alone),
        "loaded": msgspec.to_builtins(loaded),
        "seconds": round(seconds, 1),
        "clients": sizes.clients,
        "crmd_cores": round(crmd_cpu / seconds, 2),
        "alone_database_cores": alone_database_cores,
        "database_cores": None if database_cpu is None else round(database_cpu / seconds, 2),
        "routes": route_figures(answers, before, after),
        "database_by_source": {
            source: {key: round(value, 1) for key, value in spent.items()}
            for source in sorted(after)
            if (spent := spent_by(source, before, after))["seconds"] >= 0.1
        },
        "all": summary([a.seconds for a in answers], [a.status for a in answers]),
    }


def summary(seconds: list[float], statuses: list[int]) -> dict[str, Any]:
    by_status: dict[str, int] = defaultdict(int)
    for status in statuses:
        by_status[str(status)] += 1
    return {
        "requests": len(seconds),
        "p50_ms": quantile_ms(seconds, 0.5),
        "p99_ms": quantile_ms(seconds, 0.99),
        "max_ms": round(max(seconds) * 1000, 1),
        "statuses": dict(by_status),
        "shed": round(by_status.get("429", 0) / len(seconds), 3),
        "errors": sum(n for s, n in by_status.items() if s.startswith("5")),
    }


def spent_by(
    source: str, before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, float]:
    return {
        key: after.get(source, {}).get(key, 0.0) - before.get(source, {}).get(key, 0.0)
        for key in ("commands", "read", "seconds")
    }


def route_figures(
    answers: list[Answer],
    before: dict[str, dict[str, float]],
    after: dict[str, dict[str, float]],
) -> dict[str, dict[str, Any]]:
    """Each route's latencies and statuses, and what one of its requests cost the
    database on average."""
    by_route: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        by_route[answer.route].append(answer)
    figures = {}
    for route, mine in sorted(by_route.items()):
        spent = spent_by(route, before, after)
        figures[route] = {
            **summary([a.seconds for a in mine], [a.status for a in mine]),
            "commands_per_request": round(spent["commands"] / len(mine), 1),
            "documents_read_per_request": round(spent["read"] / len(mine), 1),
            "database_ms_per_request": round(spent["seconds"] * 1000 / len(mine), 1),
        }
    return figures
