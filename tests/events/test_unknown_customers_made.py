"""``[events] unknown_customer = "create"``: an event naming no known customer makes it,
with that e-mail or external id, once however often it is named."""

from __future__ import annotations

import pytest

from crmd.config import Config
from crmd.events import model
from crmd.services.embedded import Urls
from crmd.testing.servers import make_test_config
from tests.events.test_actor import until


@pytest.fixture
def config(services: Urls, port: int) -> Config:
    return make_test_config(services, server={"port": port}, events={"unknown_customer": "create"})


async def test_unknown_customers_are_made_by_external_id_or_email(client, auth, owner, system):
    supervisor = system.start(("events",))
    assert await supervisor.wait_healthy(10)
    body = [
        {"customer": "C1", "name": "seen"},  # known
        {"customer": "NEW-7", "name": "seen"},
        {"customer": " Fresh@Example.com ", "name": "seen"},
        {"customer": "NEW-7", "name": "clicked"},  # the same new one again
    ]
    response = await client.post("/api/v1/events", json=body, headers=auth)
    answer = await response.json()
    assert response.status == 202, answer
    ids = [item["customerId"] for item in answer["items"]]
    assert ids[1] == ids[3] and len(set(ids)) == 3
    customers = owner["customers"]
    made = await customers.find_one({"customer_external_id": "NEW-7"})
    assert made is not None and str(made["_id"]) == ids[1]
    by_mail = await customers.find_one({"email": "fresh@example.com"})
    assert by_mail is not None and str(by_mail["_id"]) == ids[2]
    assert {made["n"], by_mail["n"]} == {11, 12}  # numbered as customers are
    assert await customers.count_documents({}) == 12

    async def stored() -> bool:
        times = await customers.find_one(
            {"customer_external_id": "NEW-7", "eventTimes": {"$exists": True}}
        )
        return await owner[model.COLLECTION].count_documents({}) == 4 and times is not None

    await until(stored)
    made = await customers.find_one({"customer_external_id": "NEW-7"})
    assert made is not None and sorted(made["eventTimes"]) == ["clicked", "seen"]
    # Named again, found (not made again).
    again = await client.post(
        "/api/v1/events", json={"customer": "NEW-7", "name": "x"}, headers=auth
    )
    assert (await again.json())["items"][0]["customerId"] == ids[1]
    assert await customers.count_documents({}) == 12
