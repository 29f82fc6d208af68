"""Data put in through the API, for console tests that are about something else than
typing it in: one user's customers, orders, an import with a bad row, a segment, a
sent campaign and a flow, each with a name no other user's page may show."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from tests.ingest.conftest import upload, wait_done


@dataclass
class Seeded:
    headers: dict[str, str]
    marker: str
    """A word in every name and email this user has: on another user's page, a leak."""
    customer_id: str
    upload_id: str
    segment_id: str
    campaign_id: str
    flow_id: str
    webhook_id: str


async def sign_in_api(client: Any, email: str) -> dict[str, str]:
    answer = await client.post("/api/v1/user/dev-login", json={"email": email})
    assert answer.status == 200, await answer.text()
    return {"Authorization": f"Bearer {(await answer.json())['token']}"}


async def seed(client: Any, email: str, marker: str, *, send: bool = True) -> Seeded:
    """``marker``'s customers (three, one bad row), their orders, a segment, and a
    campaign to them, sent and finished unless ``send`` is false."""
    headers = await sign_in_api(client, email)
    customers = "customer_external_id,name,email,location,spend,visits\n" + "".join(
        f"{marker}{i},{marker} Person {i},{marker.lower()}{i}@example.com,Delhi,{i * 1000},{i}\n"
        for i in range(1, 4)
    )
    customers += f"{marker}X,{marker} Broken,not-an-email,Delhi,1,1\n"
    answer = await (await upload(client, headers, "customers", customers)).json()
    upload_id = answer["uploadId"]
    await wait_done(client, headers, upload_id)
    orders = "order_external_id,customer_external_id,amount,items,orderDate\n" + (
        f"{marker}-O1,{marker}1,700,{marker}-item,2024-05-02\n"
    )
    await wait_done(
        client,
        headers,
        (await (await upload(client, headers, "orders", orders)).json())["uploadId"],
    )
    listed = await (await client.get("/api/v1/customers", headers=headers)).json()
    customer_id = next(
        c["id"] for c in listed["items"] if c["customer_external_id"] == f"{marker}1"
    )
    segment = await client.post(
        "/api/v1/segments",
        json={"name": f"{marker} segment", "rule": "spend > 0"},
        headers=headers,
    )
    assert segment.status == 201, await segment.text()
    gone = {"email": f"{marker.lower()}-gone@example.com", "reason": f"{marker} asked"}
    suppressed = await client.post("/api/v1/suppressions", json=gone, headers=headers)
    assert suppressed.status == 201, await suppressed.text()
    campaign = await client.post(
        "/api/v1/campaigns",
        json={
            "name": f"{marker} campaign",
            "segmentId": (await segment.json())["id"],
            "message": f"Hello {{name}} from {marker}",
            "draft": not send,
        },
        headers=headers,
    )
    assert campaign.status == 201, await campaign.text()
    campaign_id = (await campaign.json())["id"]
    if send:
        async with asyncio.timeout(30):
            while True:
                doc = await (
                    await client.get(f"/api/v1/campaigns/{campaign_id}", headers=headers)
                ).json()
                if doc["status"] == "completed":
                    break
                await asyncio.sleep(0.2)
    flow = await client.post(
        "/api/v1/flows",
        json={
            "name": f"{marker} flow",
            "status": "active",
            "trigger": {"event": "signup"},
            "steps": [{"wait": "1h"}, {"send": {"message": f"Welcome from {marker}"}}],
        },
        headers=headers,
    )
    assert flow.status == 201, await flow.text()
    hook = await client.post(
        "/api/v1/webhooks",
        json={
            "url": f"http://127.0.0.1:9/{marker.lower()}",
            "events": ["import.done"],
            "description": f"{marker} webhook",
        },
        headers=headers,
    )
    assert hook.status == 201, await hook.text()
    return Seeded(
        headers,
        marker,
        customer_id,
        upload_id,
        (await segment.json())["id"],
        campaign_id,
        (await flow.json())["id"],
        (await hook.json())["id"],
    )
