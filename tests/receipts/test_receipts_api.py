"""Receipt callbacks over HTTP: signed ones applied once, anything else refused."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from crmd.app import Crmd
from crmd.plugins.context import plugin_secret
from crmd.plugins.signature import signed_headers
from tests.campaigns.test_delivery_loop import load, wait_status

URL = "/api/v1/deliveryReceipt/dummy_vendor"


@pytest.fixture
def vendor_settings() -> dict[str, Any]:
    """Its own callbacks come an hour later: these tests post the receipts."""
    return {"delay_min": 3600, "delay_max": 3600, "failure_rate": 0.0}


@pytest.fixture
async def sent(client: Any, auth: Any, delivering: Crmd) -> dict[str, Any]:
    await load(client, auth)
    made = await client.post(
        "/api/v1/campaigns",
        headers=auth,
        json={"name": "r", "message": "Hi {name}", "rule": "spend > 10000 AND visits < 3"},
    )
    campaign = await wait_status(client, auth, (await made.json())["id"], "sent")
    logs = [d async for d in delivering.db.communication_log.find({"campaignId": campaign["id"]})]
    return {"campaign": campaign, "logs": logs}


def post(
    client: Any,
    system: Crmd,
    receipts: Any,
    *,
    event: str | None = None,
    stamp: int | None = None,
    body: bytes | None = None,
    secret: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    raw = body if body is not None else json.dumps(receipts).encode()
    signed = signed_headers(
        secret or plugin_secret(system.jwt_secret, "dummy_vendor"),
        event or f"msg_{uuid.uuid4().hex}",
        stamp or int(time.time()),
        raw,
    )
    return client.post(
        URL, data=raw, headers={**signed, **(headers or {}), "Content-Type": "application/json"}
    )


def receipt(log: dict[str, Any], status: str, event: str = "evt-1") -> dict[str, Any]:
    return {
        "messageId": log["_id"],
        "status": status,
        "eventId": event,
        "timestamp": "2026-01-01T00:00:00Z",
    }


async def settled(system: Crmd) -> None:
    """Until the receipts group has been handed the newest entry and acked them all."""
    stream = system.streams.receipts
    async with asyncio.timeout(20):
        while True:
            [group] = await system.redis.xinfo_groups(stream)
            newest = await system.redis.xrevrange(stream, count=1)
            caught_up = not newest or group["last-delivered-id"] == newest[0][0]
            if caught_up and group["pending"] == 0:
                return
            await asyncio.sleep(0.05)


async def test_the_same_receipt_fifty_times_is_one_change(client: Any, delivering: Crmd, sent: Any):
    log = sent["logs"][0]
    for _ in range(50):
        response = await post(client, delivering, [receipt(log, "DELIVERED", "evt-same")])
        assert response.status == 202
    await settled(delivering)
    stored = await delivering.db.communication_log.find_one({"_id": log["_id"]})
    assert stored["status"] == "DELIVERED"
    assert [(k, v.replace(tzinfo=None)) for k, v in stored["times"].items()] == [
        ("DELIVERED", datetime(2026, 1, 1))
    ]
    # A receipt crmd could apply is not kept as a document of its own.
    assert await delivering.db.receipt_events.count_documents({}) == 0
    body = await (
        await client.get(
            f"/api/v1/campaigns/{sent['campaign']['id']}", headers={"Authorization": ""}
        )
    ).json()
    assert body["error"]["code"] == "unauthorized"  # reads still need a token


async def test_precedence_holds_over_http(client: Any, auth: Any, delivering: Crmd, sent: Any):
    log = sent["logs"][1]
    for status, event in (("CLICKED", "e3"), ("SENT", "e1"), ("DELIVERED", "e2")):
        assert (await post(client, delivering, receipt(log, status, event))).status == 202
    await settled(delivering)
    stored = await delivering.db.communication_log.find_one({"_id": log["_id"]})
    assert stored["status"] == "CLICKED"
    assert set(stored["times"]) == {"SENT", "DELIVERED", "CLICKED"}
    campaign = await (
        await client.get(f"/api/v1/campaigns/{sent['campaign']['id']}", headers=auth)
    ).json()
    assert campaign["stats"]["delivered"] == 1
    assert campaign["stats"]["pending"] == len(sent["logs"]) - 1


@pytest.mark.parametrize("case", ["forged", "altered", "stale", "unsigned", "wrong secret"])
async def test_bad_callbacks_are_401_and_change_nothing(
    client: Any, delivering: Crmd, sent: Any, case: str
):
    log = sent["logs"][2]
    good = json.dumps([receipt(log, "DELIVERED")]).encode()
    if case == "forged":
        response = await post(
            client, delivering, None, body=good, headers={"webhook-signature": "v1,Zm9yZ2Vk"}
        )
    elif case == "altered":
        signed = signed_headers(
            plugin_secret(delivering.jwt_secret, "dummy_vendor"), "m", int(time.time()), good
        )
        response = await client.post(
            URL, data=good.replace(b"DELIVERED", b"FAILED"), headers=signed
        )
    elif case == "stale":
        response = await post(client, delivering, None, body=good, stamp=int(time.time()) - 600)
    elif case == "unsigned":
        response = await client.post(URL, data=good)
    else:
        response = await post(client, delivering, None, body=good, secret="s" * 40)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"
    assert await delivering.redis.xlen(delivering.streams.receipts) == 0
    stored = await delivering.db.communication_log.find_one({"_id": log["_id"]})
    assert stored["status"] == "PENDING"


async def test_unknown_messages_are_recorded_and_counted(client: Any, delivering: Crmd, sent: Any):
    ghost = {
        "messageId": "f" * 24,
        "status": "DELIVERED",
        "eventId": "ghost",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    assert (await post(client, delivering, ghost)).status == 202
    await settled(delivering)
    recorded = await delivering.db.receipt_events.find_one({"_id": "dummy_vendor:ghost"})
    assert recorded["unknown"] is True and recorded["userId"] is None
    text = await (await client.get("/metrics")).text()
    assert 'crmd_receipts_total{outcome="unknown",vendor="any"} 1.0' in text


async def test_the_original_receipt_body_is_accepted(client: Any, delivering: Crmd, sent: Any):
    log = sent["logs"][3]
    original = {
        "campaignId": log["campaignId"],
        "customerId": log["customerId"],
        "status": "FAILED",
        "eventId": "orig-1",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    assert (await post(client, delivering, original)).status == 202
    await settled(delivering)
    assert (await delivering.db.communication_log.find_one({"_id": log["_id"]}))[
        "status"
    ] == "FAILED"


async def test_oversized_and_unreadable_bodies(client: Any, delivering: Crmd, sent: Any):
    huge = b"[" + b" " * (2 * 1024 * 1024) + b"]"
    assert (await post(client, delivering, None, body=huge)).status == 413
    assert (await post(client, delivering, None, body=b"{not json")).status == 422
    bad_status = [
        {"messageId": "x", "status": "LOST", "eventId": "e", "timestamp": "2026-01-01T00:00:00Z"}
    ]
    assert (await post(client, delivering, bad_status)).status == 422
    assert await delivering.redis.xlen(delivering.streams.receipts) == 0


async def test_a_receipt_that_beats_the_send_record_is_matched_later(
    client: Any, delivering: Crmd, sent: Any
):
    from datetime import UTC, datetime

    from crmd.receipts.apply import rematch_unknown

    log = sent["logs"][4]
    vendor_id = log["vendorMessageId"]
    logs = delivering.db.communication_log
    await logs.update_one({"_id": log["_id"]}, {"$set": {"vendorMessageId": None}})
    early = {
        "vendorMessageId": vendor_id,
        "status": "DELIVERED",
        "eventId": "early",
        "timestamp": "2026-01-01T00:00:00Z",
    }
    assert (await post(client, delivering, early)).status == 202
    await settled(delivering)
    assert (await logs.find_one({"_id": log["_id"]}))["status"] == "PENDING"
    assert await rematch_unknown(delivering.db, delivering.metrics, datetime.now(UTC)) == 0
    await logs.update_one({"_id": log["_id"]}, {"$set": {"vendorMessageId": vendor_id}})
    assert await rematch_unknown(delivering.db, delivering.metrics, datetime.now(UTC)) == 1
    assert (await logs.find_one({"_id": log["_id"]}))["status"] == "DELIVERED"
    # Applied at last, it is no longer kept apart as unknown.
    assert await delivering.db.receipt_events.find_one({"_id": "dummy_vendor:early"}) is None


async def test_receipts_without_an_event_id_are_refused(client: Any, delivering: Crmd, sent: Any):
    log = sent["logs"][3]
    for event in ("", "   ", "x" * 201):
        response = await post(
            client, delivering, [receipt(log, "DELIVERED", "ok"), receipt(log, "SENT", event)]
        )
        assert response.status == 422
        error = (await response.json())["error"]
        assert error["code"] == "invalid_receipt"
        assert error["details"] == {"index": 1, "field": "eventId"}
    assert await delivering.redis.xlen(delivering.streams.receipts) == 0


async def test_the_same_event_twice_in_one_callback_is_counted_a_duplicate(
    client: Any, delivering: Crmd, sent: Any
):
    log = sent["logs"][4]
    response = await post(
        client,
        delivering,
        [
            receipt(log, "SENT", "evt-x"),
            receipt(log, "SENT", "evt-x"),
            receipt(log, "DELIVERED", "evt-y"),
            receipt(log, "CLICKED", "evt-x"),
        ],
    )
    assert response.status == 202
    assert await response.json() == {"accepted": 2, "duplicates": 2}
    await settled(delivering)
    stored = await delivering.db.communication_log.find_one({"_id": log["_id"]})
    assert stored["status"] == "DELIVERED"  # the first evt-x (SENT) won, not the CLICKED


async def test_a_test_sends_receipt_is_expected_not_an_unknown_message(
    client: Any, delivering: Crmd, sent: Any
):
    """A test send has no log: its receipt is an info line, not a warning, and is not
    kept for a rematch; a receipt for a message crmd never made still is."""
    from structlog.testing import capture_logs

    from crmd.messages import test_send_id

    tried = {**receipt({"_id": test_send_id()}, "DELIVERED", "t-1")}
    stranger = {**receipt({"_id": "no-such-message"}, "DELIVERED", "s-1")}
    with capture_logs() as logs:
        assert (await post(client, delivering, [tried, stranger])).status == 202
        await settled(delivering)
    said = {line["event"]: line for line in logs if line["event"].startswith("receipt.")}
    assert said["receipt.test_send"]["count"] == 1
    assert said["receipt.test_send"]["log_level"] == "info"
    assert said["receipt.unknown_message"]["count"] == 1
    kept = [d["_id"] async for d in delivering.db.receipt_events.find({"unknown": True})]
    assert kept == ["dummy_vendor:s-1"]
