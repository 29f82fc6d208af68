"""crmd killed while it accepts an upload, before the client hears 202: either nothing of
the file is imported and the job says so, or all of it is and the job says that; never
half a file, and never a job left ``receiving`` or ``processing`` with nobody on it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
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
from crmd.ingest.publish import INTERRUPTED, recover_interrupted
from crmd.services.servers import free_port
from tests.actor_process import SECRET
from tests.ingest.conftest import wait_done

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
