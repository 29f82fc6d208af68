"""Mailgun's webhooks, signed as Mailgun signs them (HMAC-SHA256 of timestamp + token
with the webhook signing key), posted to a running crmd about mail it sent through the
smtp vendor."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

import aiohttp
import pytest
from provider_kit import (
    SMTP_SETTINGS,
    TEN_MB,
    Mailbox,
    counted,
    log_of,
    post,
    queued,
    send_campaign,
    suppressed,
    wait_for_status,
    wait_for_suppression,
    wait_for_time,
)

from crmd.testing import RunningCrmd

KEY = "key-" + secrets.token_hex(16)


@pytest.fixture
def crmd_plugins(mailbox: Mailbox) -> dict[str, dict[str, Any]]:
    return {"smtp": {**SMTP_SETTINGS, "port": mailbox.port}, "mailgun": {"signing_key": KEY}}


def webhook(
    event_data: dict[str, Any],
    *,
    key: str = KEY,
    at: float | None = None,
    token: str | None = None,
) -> tuple[bytes, str]:
    """A Mailgun webhook body and its token."""
    stamp = str(int(time.time() if at is None else at))
    token = token or secrets.token_hex(25)
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    body = {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": event_data,
    }
    return json.dumps(body).encode(), token


def event(kind: str, crmd_id: str = "", **more: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"id": uuid.uuid4().hex, "event": kind, "timestamp": time.time()}
    if crmd_id:
        data["user-variables"] = {"crmd_message_id": crmd_id}
    return data | more


async def test_mailguns_events_move_each_message_and_a_permanent_failure_suppresses(
    mailbox: Mailbox, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 5)
    ids = {to: sent.crmd_id(to) for to in sent.mails}
    message_id = str(sent.mails["p0@x.io"]["Message-ID"]).strip("<>")
    failure = {"code": 550, "message": "5.1.1 mailbox unknown"}
    events = [
        # Found by the Message-ID header Mailgun reports, no variable.
        event("delivered", message={"headers": {"message-id": message_id}}),
        event("failed", ids["p1@x.io"], severity="permanent", **{"delivery-status": failure}),
        event("failed", ids["p2@x.io"], severity="temporary", reason="generic"),
        event("complained", ids["p3@x.io"]),
        event("opened", ids["p4@x.io"]),
        event("clicked", ids["p4@x.io"], url="https://shop.example/sale"),
    ]
    for data in events:
        body, _ = webhook(data)
        status, answer = await post(crmd_server, "mailgun", body)
        assert (status, answer) == (202, {"accepted": 1, "duplicates": 0})
    assert (await wait_for_status(crmd_server, "p0@x.io", "DELIVERED"))["vendor"] == "smtp"
    bounced = await wait_for_status(crmd_server, "p1@x.io", "BOUNCED")
    assert "550 5.1.1 mailbox unknown" in bounced["reason"]
    soft = await wait_for_time(crmd_server, "p2@x.io", "SOFT_BOUNCED")
    assert soft["status"] == "SENT"  # a soft bounce is counted, never held
    await wait_for_status(crmd_server, "p3@x.io", "COMPLAINED")
    clicked = await wait_for_status(crmd_server, "p4@x.io", "CLICKED")
    assert {"OPENED", "CLICKED"} <= set(clicked["times"])
    held = await wait_for_suppression(crmd_server, "p1@x.io")
    assert held["p1@x.io"] == "bounce" and "p2@x.io" not in held and "p0@x.io" not in held


async def test_forged_stale_replayed_unknown_and_huge_webhooks_change_nothing(
    mailbox: Mailbox, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 2)
    p0 = sent.crmd_id("p0@x.io")
    bounce = event("failed", p0, severity="permanent")
    before = await queued(crmd_server)

    forged, _ = webhook(bounce, key="key-" + secrets.token_hex(16))
    assert (await post(crmd_server, "mailgun", forged))[0] == 401
    stale, _ = webhook(bounce, at=time.time() - 3600)
    status, answer = await post(crmd_server, "mailgun", stale)
    assert status == 401 and "stale" in answer["error"]["message"]
    assert (await post(crmd_server, "mailgun", TEN_MB))[0] == 413
    assert (await post(crmd_server, "mailgun", b"{not json"))[0] == 401
    assert await queued(crmd_server) == before

    # A delivery, then its token replayed with a bounce: refused. The same body again
    # is Mailgun retrying, taken as a duplicate.
    delivered, token = webhook(event("delivered", p0))
    assert (await post(crmd_server, "mailgun", delivered))[0] == 202
    replayed, _ = webhook(bounce, token=token)
    status, answer = await post(crmd_server, "mailgun", replayed)
    assert status == 401 and "replayed" in answer["error"]["message"]
    assert (await post(crmd_server, "mailgun", delivered))[0] == 202

    # An event about mail crmd did not send: dropped, counted, no retry asked for.
    stranger, _ = webhook(event("failed", severity="permanent"))
    assert await post(crmd_server, "mailgun", stranger) == (202, {"accepted": 0, "duplicates": 0})
    assert counted(crmd_server, "mailgun", "unnamed") == 1
    assert counted(crmd_server, "mailgun", "rejected") == 4

    await wait_for_status(crmd_server, "p0@x.io", "DELIVERED")
    assert (await log_of(crmd_server, "p1@x.io"))["status"] == "SENT"
    assert await suppressed(crmd_server) == {}
