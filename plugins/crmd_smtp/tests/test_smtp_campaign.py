"""Campaigns through the smtp vendor, end to end: a running crmd (crmd.testing's
fixtures) sends to a real relay (aiosmtpd), and what arrives is checked against crmd's
own records."""

from __future__ import annotations

import json
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
from smtp_relay import USER, LocalRelay

from crmd.testing import RunningCrmd, load_customers, wait_for_campaign

SETTINGS = {"host": "127.0.0.1", "from": "Shop <news@shop.example>", "tls": "none", "rate": 500}


def customers(n: int) -> str:
    rows = "".join(f"K{i},Person{i} Surname,p{i}@x.io,100\n" for i in range(n))
    return "customer_external_id,name,email,spend\n" + rows


@pytest.fixture
def crmd_plugins(relay: LocalRelay) -> dict[str, dict[str, Any]]:
    return {"smtp": {**SETTINGS, "port": relay.port}}


async def send_campaign(client: aiohttp.ClientSession) -> dict[str, Any]:
    created = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "Sale",
            "subject": "A sale for {first_name|you}",
            "message": "Hi {first_name|there}, the sale is on.",
            "rule": "spend > 50",
            "vendor": "smtp",
        },
    )
    assert created.status == 201, await created.text()
    campaign: dict[str, Any] = await created.json()
    return campaign


async def logs_by_recipient(server: RunningCrmd, campaign_id: str) -> dict[str, dict[str, Any]]:
    found = server.crmd.db.communication_log.find({"campaignId": campaign_id})
    return {log["recipient"]: log async for log in found}


def log_writes(server: RunningCrmd) -> dict[str, float]:
    """Documents crmd wrote to communication_log so far, by operation (its own counter,
    ``crmd_mongo_documents_total``)."""
    return {
        sample.labels["op"]: sample.value
        for metric in server.crmd.metrics.mongo_documents.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels["collection"] == "communication_log"
    }


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_a_campaign_arrives_whole_and_a_refused_recipient_alone_fails(
    relay: LocalRelay, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    relay.refuse = {"p7@x.io": "550 5.1.1 no such user"}
    await load_customers(crmd_client, customers(300))
    campaign = await send_campaign(crmd_client)
    done = await wait_for_campaign(crmd_client, campaign["id"], "completed", "error")
    assert done["status"] == "completed", done
    mails = relay.by_recipient()
    assert len(mails) == 299 and all(len(found) == 1 for found in mails.values())
    assert "p7@x.io" not in mails
    logs = await logs_by_recipient(crmd_server, campaign["id"])
    assert (logs["p7@x.io"]["status"], logs["p7@x.io"]["reason"]) == (
        "FAILED",
        "550 5.1.1 no such user",
    )
    assert {log["status"] for to, log in logs.items() if to != "p7@x.io"} == {"SENT"}
    for i in range(300):
        to = f"p{i}@x.io"
        if to == "p7@x.io":
            continue
        [mail] = mails[to]
        assert mail["Message-ID"] == f"<{logs[to]['_id']}@shop.example>"
        assert logs[to]["vendorMessageId"] == mail["Message-ID"]
        assert mail["Subject"] == f"A sale for Person{i}"
        assert text_of(mail).startswith(f"Hi Person{i}, the sale is on.")
        unsubscribe = mail["List-Unsubscribe"]
        assert unsubscribe.startswith(f"<{crmd_server.url}/") and unsubscribe.endswith(">")
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe[1:-1] in text_of(mail)
    assert (done["stats"]["sent"], done["stats"]["failed"]) == (299, 1)


async def test_a_recipient_who_clicks_one_click_unsubscribe_gets_no_next_campaign(
    relay: LocalRelay, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    await load_customers(crmd_client, customers(30))
    first = await send_campaign(crmd_client)
    await wait_for_campaign(crmd_client, first["id"], "completed")
    [mail] = relay.by_recipient()["p3@x.io"]
    link = mail["List-Unsubscribe"][1:-1]
    async with aiohttp.ClientSession() as mailbox_provider:  # RFC 8058: a POST, no login
        clicked = await mailbox_provider.post(
            link,
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert clicked.status == 200, await clicked.text()
    second = await send_campaign(crmd_client)
    done = await wait_for_campaign(crmd_client, second["id"], "completed", "error")
    assert done["status"] == "completed" and done["stats"]["suppressed"] == 1
    mails = relay.by_recipient()
    assert len(mails["p3@x.io"]) == 1
    assert all(len(mails[f"p{i}@x.io"]) == 2 for i in range(30) if i != 3)


async def test_a_relay_that_hangs_up_mid_batch_gets_the_rest_later_each_once(
    relay: LocalRelay, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    relay.hang_up_after = 40
    await load_customers(crmd_client, customers(120))
    campaign = await send_campaign(crmd_client)
    done = await wait_for_campaign(crmd_client, campaign["id"], "completed", "error")
    assert done["status"] == "completed", done
    assert relay.hung_up == 1 and relay.sessions >= 2
    mails = relay.by_recipient()
    assert sorted(mails) == sorted(f"p{i}@x.io" for i in range(120))
    assert all(len(found) == 1 for found in mails.values())
    logs = await logs_by_recipient(crmd_server, campaign["id"])
    assert {log["status"] for log in logs.values()} == {"SENT"}
    assert max(log["attempts"] for log in logs.values()) == 2  # the rest were retried once


async def test_each_message_is_sent_in_the_one_write_that_records_its_hand_over(
    relay: LocalRelay, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    await load_customers(crmd_client, customers(40))
    campaign = await send_campaign(crmd_client)
    done = await wait_for_campaign(crmd_client, campaign["id"], "completed", "error")
    assert done["status"] == "completed" and done["stats"]["sent"] == 40, done
    assert done["stats"]["pending"] == 0
    logs = await logs_by_recipient(crmd_server, campaign["id"])
    assert len(logs) == 40 == len(relay.by_recipient())
    for log in logs.values():  # as the SENT receipt would have left it, written at once
        assert (log["status"], log["rank"]) == ("SENT", 1)
        assert log["times"] == {"SENT": log["handedAt"]}
        assert log["createdAt"] == log["updatedAt"] == log["handedAt"]
    assert log_writes(crmd_server) == {"insert": 40}  # no update: no receipt came
    db = crmd_server.crmd.db
    assert await db.receipt_events.count_documents({}) == 0
    assert await crmd_server.crmd.redis.xlen(crmd_server.crmd.streams.receipts) == 0


async def test_a_receipt_posted_for_an_smtp_message_is_refused_and_changes_nothing(
    relay: LocalRelay,
    crmd_server: RunningCrmd,
    crmd_client: aiohttp.ClientSession,
    sign_receipt: Callable[..., dict[str, str]],
):
    await load_customers(crmd_client, customers(3))
    campaign = await send_campaign(crmd_client)
    await wait_for_campaign(crmd_client, campaign["id"], "completed")
    before = await logs_by_recipient(crmd_server, campaign["id"])
    sent = before["p1@x.io"]
    receipt = {"messageId": sent["_id"], "vendorMessageId": sent["vendorMessageId"]}
    body = json.dumps([receipt | {"timestamp": "2026-05-01T09:30:00Z"}]).encode()
    # Signed with the secret the plugin once signed its own receipts with.
    headers = sign_receipt(body, crmd_server.plugin_secret("smtp"))
    posted = await crmd_client.post("/api/v1/deliveryReceipt/smtp", data=body, headers=headers)
    assert posted.status == 401
    assert "the smtp vendor takes no receipts" in (await posted.json())["error"]["message"]
    assert await crmd_server.crmd.redis.xlen(crmd_server.crmd.streams.receipts) == 0
    assert await logs_by_recipient(crmd_server, campaign["id"]) == before


class TestAWrongPassword:
    @pytest.fixture
    def crmd_plugins(self, login_relay: LocalRelay) -> dict[str, dict[str, Any]]:
        wrong = {"username": USER, "password": "not-the-password"}
        return {"smtp": {**SETTINGS, "port": login_relay.port, **wrong}}

    async def test_stops_the_campaign_in_error_naming_the_plugin(
        self, login_relay: LocalRelay, crmd_client: aiohttp.ClientSession
    ):
        await load_customers(crmd_client, customers(20))
        campaign = await send_campaign(crmd_client)
        done = await wait_for_campaign(crmd_client, campaign["id"], "error", "completed")
        assert done["status"] == "error"
        reason = done["reason"]
        assert reason.startswith("the smtp vendor cannot send: ") and "refused the login" in reason
        assert "535" in reason and "not-the-password" not in reason
        assert "Traceback" not in reason and login_relay.received == []

    async def test_a_test_send_says_what_to_fix(
        self, login_relay: LocalRelay, crmd_client: aiohttp.ClientSession
    ):
        draft = await crmd_client.post(
            "/api/v1/campaigns",
            json={"name": "D", "message": "Hi", "rule": "spend > 50", "vendor": "smtp"}
            | {"draft": True},
        )
        assert draft.status == 201, await draft.text()
        tried = await crmd_client.post(
            f"/api/v1/campaigns/{(await draft.json())['id']}/test", json={"email": "me@x.io"}
        )
        answer = await tried.json()
        assert tried.status == 200 and answer["accepted"] is False
        assert answer["reason"].startswith("the smtp vendor cannot send: ")
        assert "refused the login" in answer["reason"] and login_relay.received == []
