"""A count that is not done within its wait, over HTTP: 202 with what is counted so far
and ``Retry-After``, then the whole count; a segment saved meanwhile is sized later."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from crmd.app import Crmd
from crmd.config import Config
from crmd.segments.service import refresh_stale_counts
from tests.conftest import make_test_config
from tests.ingest.conftest import upload, wait_done

pytestmark = pytest.mark.usefixtures("ingesting")
ROWS = "customer_external_id,name,email,spend\n" + "".join(
    f"W{i},Name {i},w{i}@x.io,{i % 100}\n" for i in range(1500)
)  # spend > 89: 150


@pytest.fixture
def config(services: Any, port: int, vendor_settings: dict[str, Any]) -> Config:
    return make_test_config(
        services, server={"port": port, "count_wait": 0}, plugins={"dummy_vendor": vendor_settings}
    )


@pytest.fixture
async def loaded(client: Any, auth: Any) -> None:
    answer = await (await upload(client, auth, "customers", ROWS)).json()
    assert (await wait_done(client, auth, answer["uploadId"]))["rows"]["persisted"] == 1500


async def test_a_preview_still_counting_is_202_and_then_complete(
    client: Any, auth: Any, loaded: None
):
    first = await client.post("/api/v1/segments/preview", headers=auth, json={"rule": "spend > 89"})
    assert first.status == 202 and first.headers["Retry-After"] == "1"
    body = await first.json()
    assert body["complete"] is False and 0 <= body["progress"] < 1
    async with asyncio.timeout(20):
        while True:
            answer = await client.post(
                "/api/v1/segments/preview", headers=auth, json={"rule": "spend > 89"}
            )
            if answer.status == 200:
                break
            await asyncio.sleep(0.1)
    done = await answer.json()
    assert done["audienceSize"] == 150 and done["complete"] and done["progress"] == 1.0
    assert all(c["spend"] > 89 for c in done["sample"]) and len(done["sample"]) == 10
    # The newest matches, newest first: W1499, W1498 ... W1490.
    assert [c["customer_external_id"] for c in done["sample"][:2]] == ["W1499", "W1498"]


async def test_a_filtered_list_says_null_until_its_total_is_counted(
    client: Any, auth: Any, loaded: None
):
    rule = {"rule": "spend < 10", "limit": "5"}
    page = await (await client.get("/api/v1/customers", headers=auth, params=rule)).json()
    assert page["total"] is None and len(page["items"]) == 5 and "." not in page["cursor"]
    async with asyncio.timeout(20):
        while page["total"] is None:
            await asyncio.sleep(0.1)
            page = await (await client.get("/api/v1/customers", headers=auth, params=rule)).json()
    assert page["total"] == 150
    following = await (
        await client.get(
            "/api/v1/customers", headers=auth, params={**rule, "cursor": page["cursor"]}
        )
    ).json()
    assert following["total"] == 150  # carried in the cursor


async def test_a_segment_saved_before_its_count_is_done_is_sized_by_the_clock(
    client: Any, auth: Any, loaded: None, system: Crmd
):
    made = await (
        await client.post("/api/v1/segments", headers=auth, json={"rule": "spend >= 50"})
    ).json()
    assert made["audienceSize"] is None and made["countedAt"] is None
    async with asyncio.timeout(20):
        while not await refresh_stale_counts(system.counter, system.db, datetime.now(UTC)):
            await asyncio.sleep(0.1)
    sized = await (await client.get(f"/api/v1/segments/{made['id']}", headers=auth)).json()
    assert sized["audienceSize"] == 750 and sized["countedAt"]
