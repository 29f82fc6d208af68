"""The scaling figure: the same import and the same campaign with 1, 2 and 3 worker
processes behind one web process, all on the run's servers.

Each size gets a database and stream prefix of its own, one ``crmd serve --actors http``
and N ``crmd serve --actors ingest,dispatch,receipts,clock``. Each figure is set against
the one-worker run of the same work: the ratio is the speed-up. On a machine with few
cores the database server and the workers compete for them, so expect little; the
figure is there to show it, not to meet a target.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from time import perf_counter
from typing import Any

from pymongo import AsyncMongoClient

from bench.data import EVERYONE, write_customers
from bench.server import Api, crmd_config, signed_in, stop, upload_csv, wait_ready
from crmd.services.children import free_port
from crmd.services.embedded import Urls

WORKER = "ingest,dispatch,receipts,clock"
WORKERS = (1, 2, 3)


@contextmanager
def cluster(work: Path, urls: Urls, database: str, max_rows: int, workers: int) -> Iterator[str]:
    """A web process and ``workers`` workers on one database; yields the web's URL."""
    port = free_port()
    config = work / f"{database}.toml"
    config.write_text(crmd_config(urls, port, database, max_rows))
    roles = [("web", "http", port)] + [(f"w{n}", WORKER, free_port()) for n in range(workers)]
    with ExitStack() as stack:
        for name, actors, own_port in roles:
            log = stack.enter_context((work / f"{database}-{name}.log").open("wb"))
            process = subprocess.Popen(
                [sys.executable, "-m", "crmd", "serve", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    "CRMD_LOGGING__FORMAT": "json",
                    "CRMD_SERVER__PORT": str(own_port),
                    "CRMD_SUPERVISOR__ACTORS": actors,
                    "CRMD_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
                    "CRMD_STREAMS__CONSUMER_NAME": f"{database}-{name}",
                },
            )
            stack.callback(stop, process)
            base = f"http://127.0.0.1:{own_port}"
            asyncio.run(wait_ready(process, base, work / f"{database}-{name}.log"))
        yield f"http://127.0.0.1:{port}"


async def _until(api: Api, path: str, done: Any, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while True:
        answer = await api.call("GET", path)
        if done(answer):
            return
        if answer.get("status") in ("failed", "error", "cancelled"):
            raise RuntimeError(f"{path}: {answer}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path}: not done after {timeout:.0f} s")
        await asyncio.sleep(0.25)


async def _run(base: str, path: Path, rows: int) -> tuple[float, float]:
    """Import ``path`` and send a campaign to every row: (rows/s, messages/s)."""
    async with signed_in(base, "scaling@bench.example.com") as api:
        started = perf_counter()
        upload, _ = await upload_csv(api, path)
        await _until(api, f"/api/v1/uploads/{upload}", lambda j: j["status"] == "done")
        imported = perf_counter() - started
        started = perf_counter()
        created = await api.call(
            "POST",
            "/api/v1/campaigns",
            expect=201,
            json={"name": "scaling", "message": "Hi {first_name|there}", "rule": EVERYONE},
        )
        await _until(
            api,
            f"/api/v1/campaigns/{created['id']}",
            lambda c: c["status"] in ("sent", "completed"),
        )
        sent = perf_counter() - started
    return rows / imported, rows / sent


def measure_scaling(work: Path, urls: Urls, database: str, rows: int) -> list[dict[str, Any]]:
    """Per worker count: rows imported and messages sent a second."""
    path = work / "scaling.csv"
    write_customers(path, rows, "s")
    results = []
    for workers in WORKERS:
        name = f"{database}s{workers}"
        with cluster(work, urls, name, rows, workers) as base:
            ingest, dispatch = asyncio.run(_run(base, path, rows))
        asyncio.run(_drop(urls.mongodb, name))
        results.append({"workers": workers, "rows_per_s": ingest, "messages_per_s": dispatch})
    return results


async def _drop(mongodb: str, database: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    try:
        await client.drop_database(database)
    finally:
        await client.close()
