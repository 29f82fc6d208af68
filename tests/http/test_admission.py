"""Expensive reads take a slot: a bounded wait for one, then 429 with Retry-After."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crmd.app import Crmd
from crmd.config import Config
from crmd.http.keys import ADMISSION
from tests.conftest import make_test_config


@pytest.fixture
def config(services: Any, port: int, vendor_settings: dict[str, Any]) -> Config:
    return make_test_config(
        services,
        server={"port": port, "read_slots": 2, "read_slots_per_user": 1, "read_wait": 0.2},
        plugins={"dummy_vendor": vendor_settings},
    )


async def signed_in(client: Any, email: str) -> tuple[dict[str, str], str]:
    answer = await (await client.post("/api/v1/user/dev-login", json={"email": email})).json()
    return {"Authorization": f"Bearer {answer['token']}"}, answer["user"]["id"]


def refused(system: Crmd, full: str) -> float:
    return sum(
        s.value
        for m in system.metrics.reads_refused.collect()
        for s in m.samples
        if s.name.endswith("_total") and s.labels["full"] == full
    )


async def preview(client: Any, auth: dict[str, str]) -> Any:
    return await client.post("/api/v1/segments/preview", headers=auth, json={"rule": "spend > 1"})


async def test_a_user_whose_slots_are_full_is_told_to_come_back(client: Any, system: Crmd):
    auth, user = await signed_in(client, "busy@example.com")
    other, _ = await signed_in(client, "calm@example.com")
    async with system.app[ADMISSION].slot(user):  # one expensive read in progress
        answer = await preview(client, auth)
        assert answer.status == 429 and answer.headers["Retry-After"] == "1"
        error = (await answer.json())["error"]
        assert error["code"] == "busy" and "your expensive requests" in error["message"]
        assert refused(system, "user") == 1
        # Filtered lists wait their turn too; a plain list does not, nor another user.
        assert (await client.get("/api/v1/customers?rule=visits>1", headers=auth)).status == 429
        assert (await client.get("/api/v1/customers", headers=auth)).status == 200
        assert (await preview(client, other)).status == 200
    assert (await preview(client, auth)).status == 200
    assert system.metrics.read_waiting._value.get() == 0
    assert system.metrics.read_slots_in_use._value.get() == 0


async def test_when_the_servers_slots_are_full_everyone_waits_then_hears_429(
    client: Any, system: Crmd
):
    auth, _ = await signed_in(client, "late@example.com")
    admission = system.app[ADMISSION]
    async with admission.slot("someone"), admission.slot("someone else"):
        answer = await preview(client, auth)
        assert answer.status == 429
        assert "server is busy" in (await answer.json())["error"]["message"]
        assert refused(system, "server") == 1


async def test_a_slot_freed_within_the_wait_is_taken(client: Any, system: Crmd):
    auth, user = await signed_in(client, "patient@example.com")
    held = asyncio.Event()

    async def hold_briefly() -> None:
        async with system.app[ADMISSION].slot(user):
            held.set()
            await asyncio.sleep(0.05)

    holder = asyncio.create_task(hold_briefly())
    await held.wait()
    assert (await preview(client, auth)).status == 200
    await holder
    assert refused(system, "user") == 0


async def test_an_original_clients_whole_list_is_one_expensive_read(
    client: Any, system: Crmd, ingesting: Any, monkeypatch: pytest.MonkeyPatch
):
    """The original clients' unpaged list reads every page: past the first it holds
    one of the user's slots (429 when none is free), and the pages it reads (a filtered
    one included) take no second slot, so a user with one slot is not refused by
    itself. A list of one page is a plain page."""
    from crmd.http import original_lists
    from tests.ingest.conftest import upload, wait_done

    monkeypatch.setattr(original_lists, "MAX_LIMIT", 25)  # 60 customers: three pages

    auth, user = await signed_in(client, "whole@example.com")
    original = {"x-access-token": auth["Authorization"].removeprefix("Bearer ")}
    rows = "name,email,visits\n" + "".join(f"P{i},p{i}@example.com,{i}\n" for i in range(60))
    accepted = await (await upload(client, auth, "customers", rows)).json()
    assert (await wait_done(client, auth, accepted["uploadId"]))["rows"]["persisted"] == 60
    async with system.app[ADMISSION].slot(user):
        busy = await client.get("/api/v1/customers", headers=original)
        assert busy.status == 429 and busy.headers["Retry-After"] == "1"
        # Paged, it is a plain page: no slot; nor is a list of one page.
        assert (await client.get("/api/v1/customers?limit=5", headers=original)).status == 200
        assert (await client.get("/api/v1/segments", headers=original)).status == 200
    whole = await client.get("/api/v1/customers?rule=visits>=10", headers=original)
    assert whole.status == 200
    assert len((await whole.json())["data"]) == 50
    assert system.metrics.read_slots_in_use._value.get() == 0
