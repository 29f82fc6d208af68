import json

import pytest
from aiohttp import web

from crmd.testing import load_customers, wait_for_campaign

SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"
CUSTOMERS = "customer_external_id,name,email,phone,spend\nK1,Asha,a@x.io,+9199,10\n"
handed: list[str] = []  # the message ids the gateway took


@pytest.fixture
async def crmd_plugins(aiohttp_server):  # a gateway that takes every message
    async def send(request):
        handed.extend(m["id"] for m in (await request.json())["messages"])
        return web.json_response({"results": [{"id": handed[-1], "status": "accepted"}]})

    app = web.Application()
    app.router.add_post("/", send)
    return {"webhook": {"url": str((await aiohttp_server(app)).make_url("/")), "secret": SECRET}}


async def test_a_message_goes_out_and_its_signed_receipt_lands(crmd_client, sign_receipt):
    await load_customers(crmd_client, CUSTOMERS)
    made = {"name": "Hi", "message": "Hi {name}", "rule": "spend > 5", "vendor": "webhook"}
    campaign = await (await crmd_client.post("/api/v1/campaigns", json=made)).json()
    await wait_for_campaign(crmd_client, campaign["id"], "sent")
    receipt = {"id": handed[-1], "status": "DELIVERED", "timestamp": "2026-05-01T09:30:00Z"}
    body = json.dumps({"receipts": [receipt]}).encode()
    headers = sign_receipt(body, SECRET)
    await crmd_client.post("/api/v1/deliveryReceipt/webhook", data=body, headers=headers)
    done = await wait_for_campaign(crmd_client, campaign["id"], "completed")
    assert done["stats"]["delivered"] == 1
