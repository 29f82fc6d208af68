"""crmd killed while it accepts an upload, before the client hears 202: either nothing of
the file is imported and the job says so, or all of it is and the job says that; never
half a file, and never a job left ``receiving`` or ``processing`` with nobody on it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.auth.tokens import issue_token
from crmd.auth.users import upsert_dev_user
from crmd.config import Config
from crmd.ingest import chunks
from crmd.ingest.publish import (
    INTERRUPTED,
    Abandoned,
    publish_all,
    published,
    recover_interrupted,
)
from crmd.services.children import free_port
from tests.actor_process import SECRET
from tests.ingest.conftest import wait_done

pytestmark = pytest.mark.slow  # kill -9 tests

REPO = Path(__file__).resolve().parents[2]
ROWS = 2_000
FILE = "customer_external_id,name,email\n" + "".join(
    f"U{i},Name {i},u{i}@x.io\n" for i in range(ROWS)
)


async def upload_to_dying_crmd(config: Config, system: Crmd, when: str) -> dict[str, Any]:
    """Upload FILE to a crmd that dies at ``when``; returns the job it left behind."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "tests.ingest.kill_upload",
        config.mongodb.url,
        config.mongodb.database,
        config.redis.url,
        config.redis.stream_prefix,
        str(port),
        when,
    ]
    process = await asyncio.create_subprocess_exec(*argv, cwd=REPO, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(60):
            while (line := await process.stdout.readline()) != b"listening\n":
                assert line, "the process ended before it listened"
        user = await upsert_dev_user(system.db, "ops@example.com")
        token = issue_token(user.id, user.email, SECRET, 3600)
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):  # the answer never comes
                await http.post(
                    f"http://127.0.0.1:{port}/api/v1/upload/customers",
                    data=FILE.encode(),
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
                )
        assert await asyncio.wait_for(process.wait(), 30) == -9
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    [job] = [d async for d in system.db.uploads.find({})]
    assert job["rows"]["valid"] == ROWS
    return job


async def test_killed_before_the_rows_were_published_nothing_is_imported(
    config: Config, system: Crmd, client: Any, auth: Any
):
    job = await upload_to_dying_crmd(config, system, "publishing")
    assert job["status"] == "receiving"
    assert await system.redis.xlen(system.streams.ingest) == 0  # Redis dropped them all
    assert (
        await recover_interrupted(system.db, system.redis, system.streams.ingest, datetime.now(UTC))
        == 0
    )
    later = datetime.now(UTC) + timedelta(minutes=2)
    assert await recover_interrupted(system.db, system.redis, system.streams.ingest, later) == 1
    found = await system.db.uploads.find_one({"_id": job["_id"]})
    assert (found["status"], found["reason"]) == ("failed", INTERRUPTED)
    assert await system.db.customers.count_documents({}) == 0


@pytest.mark.usefixtures("ingesting")
async def test_killed_after_the_rows_were_published_the_whole_file_is_imported(
    config: Config, system: Crmd, client: Any, auth: Any
):
    job = await upload_to_dying_crmd(config, system, "published")
    # The ingest actor may already have taken the job on, or it waits for the clock.
    assert job["status"] in ("receiving", "processing", "done")
    later = datetime.now(UTC) + timedelta(minutes=2)
    await recover_interrupted(system.db, system.redis, system.streams.ingest, later)
    upload_id = str(job["_id"])
    # The job belongs to the uploader: they find it in their list, with its true state.
    user = job["userId"]
    token = issue_token(user, "ops@example.com", system.jwt_secret, 3600)
    mine = {"Authorization": f"Bearer {token}"}
    listed = await (await client.get("/api/v1/uploads", headers=mine)).json()
    assert [u["id"] for u in listed["items"]] == [upload_id]
    done = await wait_done(client, mine, upload_id, timeout=120)
    assert done["status"] == "done" and done["rows"]["persisted"] == ROWS
    assert await system.db.customers.count_documents({}) == ROWS
    assert ObjectId(upload_id) == job["_id"]


async def test_a_publication_in_flight_fails_once_the_upload_is_given_up(system: Crmd):
    """The clock's answer is final: once it has settled an upload as not published, a
    transaction still on its way cannot import it."""
    redis, stream = system.redis, system.streams.ingest
    loop = asyncio.get_running_loop()
    settled: list[bool] = []

    def payloads() -> Iterator[bytes]:
        for n in range(250):
            if n == 150:  # the clock settles the upload half way through
                settled.append(
                    asyncio.run_coroutine_threadsafe(published(redis, stream, "u1"), loop).result()
                )
            yield chunks.encode(chunks.IngestChunk("u1", "user", "customers", n, 0))

    with pytest.raises(Abandoned):
        await publish_all(redis, stream, "u1", payloads())
    assert settled == [False]
    assert await redis.xlen(stream) == 0
    # And a publication that starts after the upload was given up never begins.
    with pytest.raises(Abandoned):
        await publish_all(redis, stream, "u1", iter([b"x"]))
    assert await redis.xlen(stream) == 0


@pytest.mark.usefixtures("ingesting")
async def test_the_heartbeat_starts_when_the_job_is_recorded_not_when_the_body_began(
    client: Any, auth: Any, system: Crmd
):
    async def slowly() -> AsyncIterator[bytes]:
        yield b"name,email\n"
        for n in range(10):
            await asyncio.sleep(0.15)
            yield f"N{n},n{n}@x.io\n".encode()

    response = await client.post(
        "/api/v1/upload/customers", data=slowly(), headers={**auth, "Content-Type": "text/csv"}
    )
    assert response.status == 202
    job = await system.db.uploads.find_one({})
    assert (job["heartbeatAt"] - job["createdAt"]).total_seconds() >= 1.0


async def post_with_key(client: Any, auth: Any, kind: str, text: str, key: str) -> Any:
    return await client.post(
        f"/api/v1/upload/{kind}",
        data=text.encode(),
        headers={**auth, "Content-Type": "text/csv", "Idempotency-Key": key},
    )


@pytest.mark.usefixtures("ingesting")
async def test_an_idempotency_key_replays_an_accepted_upload_and_frees_a_failed_one(
    client: Any, auth: Any, system: Crmd
):
    first = await post_with_key(client, auth, "customers", FILE, "k-1")
    again = await post_with_key(client, auth, "customers", FILE, "k-1")
    assert first.status == again.status == 202
    assert (await first.json())["uploadId"] == (await again.json())["uploadId"]
    assert await system.db.uploads.count_documents({}) == 1
    # The key names one upload of one kind: the same key for orders is a mistake.
    reused = await post_with_key(client, auth, "orders", "amount,orderDate\n1,2024-01-01\n", "k-1")
    assert reused.status == 422
    assert (await reused.json())["error"]["code"] == "idempotency_key_reused"
    # A job that failed before it was accepted frees its key: the retry imports.
    await system.db.uploads.update_many(
        {}, {"$set": {"status": "failed"}, "$unset": {"idempotencyKey": ""}}
    )
    retried = await post_with_key(client, auth, "customers", FILE, "k-1")
    assert retried.status == 202
    assert (await retried.json())["uploadId"] != (await first.json())["uploadId"]
