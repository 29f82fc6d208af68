"""A chunk that cannot be stored fails its upload; once the cause is fixed and the chunk
replayed from the dead letters, the upload comes back and ends done, every row counted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import crmd.ingest.actor
from crmd.streams.dead import list_letters, replay
from tests.ingest.conftest import upload, wait_done


@pytest.fixture
def config(config: Any) -> Any:
    """Small chunks, and a chunk given up on after two quick tries."""
    import msgspec

    streams = msgspec.structs.replace(
        config.streams, max_deliveries=2, claim_idle_ms=300, claim_interval_ms=50
    )
    ingest = msgspec.structs.replace(config.ingest, chunk_rows=2)
    return msgspec.structs.replace(config, streams=streams, ingest=ingest)


async def test_a_replayed_dead_chunk_revives_its_upload(
    client: Any, auth: Any, ingesting: Any, system: Any, monkeypatch: pytest.MonkeyPatch
):
    real = crmd.ingest.actor.persist_chunk
    broken = {"on": True}

    async def fails_for_the_second_chunk(db: Any, chunk: Any, *told: Any) -> Any:
        if chunk.seq == 1 and broken["on"]:
            raise ValueError("the database refused the chunk")
        return await real(db, chunk, *told)

    monkeypatch.setattr(crmd.ingest.actor, "persist_chunk", fails_for_the_second_chunk)
    rows = "customer_external_id,name,email\n" + "".join(
        f"D{i},Name {i},d{i}@example.com\n" for i in range(6)
    )
    answer = await (await upload(client, auth, "customers", rows)).json()
    job = await wait_done(client, auth, answer["uploadId"])
    assert job["status"] == "failed" and "chunk 1 could not be stored" in job["reason"], job

    broken["on"] = False  # the cause fixed, the operator replays the chunk
    stream = system.streams.ingest
    [letter] = await list_letters(system.redis, stream, 10)
    await replay(system.redis, stream, [letter.id])
    async with asyncio.timeout(20):
        while job["status"] == "failed":  # until the replayed chunk is stored
            await asyncio.sleep(0.05)
            job = await wait_done(client, auth, answer["uploadId"])
    assert job["status"] == "done", job
    assert job["rows"]["persisted"] == 6 == job["rows"]["valid"]
    assert await system.db.customers.count_documents({}) == 6
