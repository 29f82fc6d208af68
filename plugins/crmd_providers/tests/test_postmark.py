"""Postmark's webhooks, with the credential Postmark is given: basic auth in the
webhook's URL, or a custom header, or both."""

from __future__ import annotations

import base64
import json
import secrets
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

PASSWORD = secrets.token_urlsafe(24)
TOKEN = secrets.token_urlsafe(24)
AT = "2026-05-01T09:30:00Z"


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


GOOD = basic("postmark", PASSWORD) | {"X-Hook-Token": TOKEN}


@pytest.fixture
def crmd_plugins(mailbox: Mailbox) -> dict[str, dict[str, Any]]:
    postmark = {"username": "postmark", "password": PASSWORD, "header": "X-Hook-Token"}
    return {
        "smtp": {**SMTP_SETTINGS, "port": mailbox.port},
        "postmark": {**postmark, "token": TOKEN},
    }


def record(kind: str, crmd_id: str, **more: Any) -> bytes:
    """A webhook body as Postmark posts it, crmd's id in its Metadata."""
    found = {
        "RecordType": kind,
        "MessageID": secrets.token_hex(16),
        "ServerID": 23,
        "MessageStream": "outbound",
        "Metadata": {"crmd_message_id": crmd_id} if crmd_id else {},
        "Tag": "",
    }
    return json.dumps(found | more).encode()


async def test_postmarks_webhooks_move_each_message_and_a_hard_bounce_suppresses(
    mailbox: Mailbox, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 6)
    ids = [sent.crmd_id(f"p{i}@x.io") for i in range(6)]
    bodies = [
        record("Delivery", ids[0], Recipient="p0@x.io", DeliveredAt=AT, Details="250 OK"),
        record("Bounce", ids[1], ID=4323372036854775807, Type="HardBounce", BouncedAt=AT),
        record("Bounce", ids[2], ID=4323372036854775808, Type="SoftBounce", BouncedAt=AT),
        record("SpamComplaint", ids[3], ID=4323372036854775809, BouncedAt=AT),
        record("Open", ids[4], Recipient="p4@x.io", ReceivedAt=AT, FirstOpen=True),
        record("Click", ids[5], ReceivedAt=AT, OriginalLink="https://shop.example/sale"),
    ]
    for body in bodies:
        assert await post(crmd_server, "postmark", body, GOOD) == (
            202,
            {"accepted": 1, "duplicates": 0},
        )
    await wait_for_status(crmd_server, "p0@x.io", "DELIVERED")
    await wait_for_status(crmd_server, "p1@x.io", "BOUNCED")
    assert (await wait_for_time(crmd_server, "p2@x.io", "SOFT_BOUNCED"))["status"] == "SENT"
    await wait_for_status(crmd_server, "p3@x.io", "COMPLAINED")
    await wait_for_status(crmd_server, "p4@x.io", "OPENED")
    await wait_for_status(crmd_server, "p5@x.io", "CLICKED")
    held = await wait_for_suppression(crmd_server, "p1@x.io")
    assert held["p1@x.io"] == "bounce" and not {"p0@x.io", "p2@x.io"} & set(held)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("postmark", PASSWORD),  # the header token missing
        {"X-Hook-Token": TOKEN},  # the basic auth missing
        basic("postmark", "wrong" + PASSWORD) | {"X-Hook-Token": TOKEN},
        basic("someone", PASSWORD) | {"X-Hook-Token": TOKEN},
        basic("postmark", PASSWORD) | {"X-Hook-Token": TOKEN[:-1]},
        {"Authorization": "Basic !!!", "X-Hook-Token": TOKEN},
    ],
)
async def test_a_webhook_without_both_credentials_is_refused_and_changes_nothing(
    mailbox: Mailbox,
    crmd_server: RunningCrmd,
    crmd_client: aiohttp.ClientSession,
    headers: dict[str, str],
):
    sent = await send_campaign(crmd_client, mailbox, 1)
    body = record("Bounce", sent.crmd_id("p0@x.io"), ID=1, Type="HardBounce", BouncedAt=AT)
    assert (await post(crmd_server, "postmark", body, headers))[0] == 401
    assert await queued(crmd_server) == 0
    assert (await log_of(crmd_server, "p0@x.io"))["status"] == "SENT"


async def test_unknown_broken_and_huge_webhooks_change_nothing(
    mailbox: Mailbox, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    await send_campaign(crmd_client, mailbox, 1)
    stranger = record("Bounce", "", ID=2, Type="HardBounce", BouncedAt=AT)
    assert await post(crmd_server, "postmark", stranger, GOOD) == (
        202,
        {"accepted": 0, "duplicates": 0},
    )
    assert counted(crmd_server, "postmark", "unnamed") == 1
    broken = await post(crmd_server, "postmark", b'{"RecordType": "Bounce", "Type"', GOOD)
    assert broken[0] == 422
    bad_time = record("Delivery", "x", DeliveredAt="yesterday")
    assert (await post(crmd_server, "postmark", bad_time, GOOD))[0] == 422
    assert (await post(crmd_server, "postmark", TEN_MB, GOOD))[0] == 413
    assert await queued(crmd_server) == 0
    assert (await log_of(crmd_server, "p0@x.io"))["status"] == "SENT"
    assert await suppressed(crmd_server) == {}
