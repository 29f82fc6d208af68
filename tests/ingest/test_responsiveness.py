"""A large upload must not stall the event loop: /healthz keeps answering meanwhile."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.ingest.conftest import upload

pytestmark = pytest.mark.slow  # 200,000 rows


async def test_healthz_keeps_answering_during_a_200k_row_upload(
    client: Any, auth: Any, ingesting: Any
):
    rows = "customer_external_id,name,email,spend,visits,lastActive,city\n" + "".join(
        f"E{i},Person {i},p{i}@example.com,{i % 9000}.5,{i % 40},2024-03-{i % 28 + 1:02d},Pune\n"
        for i in range(200_000)
    )
    latencies: list[float] = []

    async def probe(done: asyncio.Event) -> None:
        while not done.is_set():
            started = time.perf_counter()
            response = await client.get("/healthz")
            assert response.status == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.02)

    done = asyncio.Event()
    prober = asyncio.create_task(probe(done))
    response = await upload(client, auth, "customers", rows)
    done.set()
    await prober
    assert response.status == 202
    assert (await response.json())["rows"]["valid"] == 200_000
    assert len(latencies) > 20  # the probe really ran during the upload
    # The loop is never held for long: nine probes in ten within 100 ms, none stalled
    # for half a second (the bench's upload figure measures the latency itself; here a
    # busy machine's scheduling must not fail the test).
    latencies.sort()
    assert latencies[len(latencies) * 9 // 10] < 0.1, latencies[-5:]
    assert latencies[-1] < 0.5, latencies[-5:]
