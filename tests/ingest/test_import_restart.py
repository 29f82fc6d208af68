"""A daemon killed in the middle of a large import is ready again within seconds, twice,
and the import ends with every row stored once: readiness never waits for backlog."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from crmd.services.children import free_port
from crmd.services.embedded import Urls
from tests.commands import Daemon

pytestmark = pytest.mark.slow  # kill -9 tests

ROWS = 20_000
"""Forty chunks of 500: a backlog of many chunks, most in the killed consumer's hands."""
READY_WITHIN = 10.0


def big_file(rows: int) -> bytes:
    lines = ["customer_external_id,name,email,spend,visits"]
    lines += [f"B{i},Name {i},b{i}@x.io,{i % 9000},{i % 7}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def persisted(daemon: Daemon, token: str, upload: str) -> dict[str, Any]:
    status, job = daemon.call("GET", f"/api/v1/uploads/{upload}", token)
    assert status == 200, job
    return job  # type: ignore[no-any-return]


def wait_for(daemon: Daemon, token: str, upload: str, rows: int, timeout: float = 900) -> int:
    """Until at least ``rows`` are persisted (or the job is done); returns the count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = persisted(daemon, token, upload)
        if job["rows"]["persisted"] >= rows or job["status"] in ("done", "failed"):
            return int(job["rows"]["persisted"])
        time.sleep(0.2)
    raise AssertionError(f"fewer than {rows} rows persisted in {timeout} s")


def test_killed_twice_during_a_large_import_it_is_ready_in_seconds_and_loses_nothing(
    services: Urls, tmp_path: Path
):
    database, prefix = f"t_{uuid.uuid4().hex[:12]}", f"t{uuid.uuid4().hex[:12]}"
    daemon = Daemon(
        services.mongodb, services.redis, free_port(), database, prefix, tmp_path / "crmd.log"
    )
    mongo: MongoClient[dict[str, Any]] = MongoClient(services.mongodb)
    try:
        daemon.start()
        token = daemon.token()
        status, answer = daemon.call(
            "POST", "/api/v1/upload/customers?filename=big.csv", token, big_file(ROWS), "text/csv"
        )
        assert status == 202, answer
        assert answer["rows"]["valid"] == ROWS
        upload = answer["uploadId"]

        wait_for(daemon, token, upload, 1_000)
        daemon.kill()  # a backlog of almost every chunk, most of it in this consumer's hands
        assert daemon.start() < READY_WITHIN, daemon.tail()
        token = daemon.token()
        before = persisted(daemon, token, upload)["rows"]["persisted"]
        wait_for(daemon, token, upload, before + 2_000)
        daemon.kill()  # again, half way through draining what it held
        assert daemon.start() < READY_WITHIN, daemon.tail()
        token = daemon.token()

        assert wait_for(daemon, token, upload, ROWS) == ROWS
        job = persisted(daemon, token, upload)
        assert job["status"] == "done", job
        assert mongo[database].customers.count_documents({}) == ROWS
        assert daemon.stop() == 0
    finally:
        daemon.stop()
        mongo.drop_database(database)
        mongo.close()
