"""A campaign through the webhook vendor, end to end: a running crmd (crmd.testing's
fixtures) posts to a local gateway, which posts signed receipts back; crmd verifies them
and applies them to the campaign's logs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from webhook_gateway import SECRET, Gateway

from crmd.testing import RunningCrmd, load_customers, wait_for_campaign

CUSTOMERS = "customer_external_id,name,email,phone,spend\n" + "".join(
    f"K{i},Person{i},p{i}@x.io,+91990000{i:04d},100\n" for i in range(60)
)


@pytest.fixture
def crmd_plugins(gateway: Gateway) -> dict[str, dict[str, Any]]:
    return {"webhook": {"url": gateway.url, "secret": SECRET, "rate": 100}}


async def test_receipts_come_back_signed_and_land_on_the_campaigns_logs(
    gateway: Gateway, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    gateway.receipts = True
    gateway.refuse = {"+919900000003": "not a mobile number"}
    gateway.undeliverable = {"+919900000005"}
    await load_customers(crmd_client, CUSTOMERS)
    created = await crmd_client.post(
        "/api/v1/campaigns",
        json={
            "name": "SMS",
            "message": "Hi {first_name}",
            "rule": "spend > 50",
            "vendor": "webhook",
        },
    )
    assert created.status == 201, await created.text()
    campaign = await created.json()
    done = await wait_for_campaign(crmd_client, campaign["id"], "completed", "error")
    assert done["status"] == "completed", done
    assert set(gateway.receipt_answers) == {202}  # crmd verified and took every callback
    sent = [m for batch in gateway.batches for m in batch["messages"]]
    assert sorted(m["to"] for m in sent) == sorted(f"+91990000{i:04d}" for i in range(60))
    assert {m["text"].splitlines()[0] for m in sent if m["to"] == "+919900000007"} == {"Hi Person7"}
    logs = {
        log["phone"]: log
        async for log in crmd_server.crmd.db.communication_log.find({"campaignId": campaign["id"]})
    }
    assert (logs["+919900000003"]["status"], logs["+919900000003"]["reason"]) == (
        "FAILED",
        "not a mobile number",
    )
    assert logs["+919900000005"]["status"] == "FAILED"
    delivered = [log for phone, log in logs.items() if phone not in gateway.undeliverable]
    delivered = [log for log in delivered if log["phone"] not in gateway.refuse]
    assert len(delivered) == 58 and {log["status"] for log in delivered} == {"DELIVERED"}
    assert all(log["vendorMessageId"] == f"gw-{log['_id']}" for log in delivered)
    assert (done["stats"]["delivered"], done["stats"]["failed"]) == (58, 2)


async def test_a_receipt_with_a_missing_wrong_or_stale_signature_is_refused(
    crmd_client: aiohttp.ClientSession, sign_receipt: Callable[..., dict[str, str]]
):
    body = json.dumps(
        {"receipts": [{"id": "x", "status": "DELIVERED", "timestamp": "2026-05-01T09:30:00Z"}]}
    ).encode()
    url = "/api/v1/deliveryReceipt/webhook"
    wrong = "whsec_" + "QUJD" * 8
    for headers in (
        {"Content-Type": "application/json"},
        sign_receipt(body, wrong),
        sign_receipt(body, SECRET, at=time.time() - 600),
    ):
        refused = await crmd_client.post(url, data=body, headers=headers)
        assert refused.status == 401, await refused.text()
        assert "webhook" in (await refused.json())["error"]["message"]
    taken = await crmd_client.post(url, data=body, headers=sign_receipt(body, SECRET))
    assert taken.status == 202 and (await taken.json())["accepted"] == 1
