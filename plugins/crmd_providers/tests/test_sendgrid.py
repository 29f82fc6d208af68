"""SendGrid's Event Webhook, signed as SendGrid signs it (ECDSA P-256 with SHA-256 over
the timestamp header and the raw body) with a key pair the test makes."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
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

SENDGRID = ec.generate_private_key(ec.SECP256R1())
ANOTHER = ec.generate_private_key(ec.SECP256R1())


def shown_key(key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid's settings page shows it: base64 DER."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture
def crmd_plugins(mailbox: Mailbox) -> dict[str, dict[str, Any]]:
    smtp = {**SMTP_SETTINGS, "port": mailbox.port}
    return {"smtp": smtp, "sendgrid": {"public_key": shown_key(SENDGRID)}}


def signed(
    events: list[dict[str, Any]], *, key: ec.EllipticCurvePrivateKey = SENDGRID, at: float = 0
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    stamp = str(int(at or time.time()))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def event(kind: str, crmd_id: str, **more: Any) -> dict[str, Any]:
    """An event as SendGrid posts it, the message's unique argument at its top level."""
    found = {
        "email": "someone@x.io",
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": f"{uuid.uuid4().hex}.filter0001",
        "crmd_message_id": crmd_id,
    }
    return found | more


async def test_sendgrids_events_move_each_message_and_a_bounce_suppresses(
    mailbox: Mailbox, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 6)
    ids = [sent.crmd_id(f"p{i}@x.io") for i in range(6)]
    events = [
        event("processed", ids[0]),  # not recorded: the smtp vendor's SENT says it
        event("delivered", ids[0], response="250 OK"),
        event("bounce", ids[1], type="bounce", status="5.1.1", reason="no such user"),
        event("bounce", ids[2], type="blocked", bounce_classification="Reputation"),
        event("deferred", ids[3]),
        event("spamreport", ids[4]),
        event("open", ids[5]),
        event("click", ids[5], url="https://shop.example/sale"),
    ]
    body, headers = signed(events)
    assert await post(crmd_server, "sendgrid", body, headers) == (
        202,
        {"accepted": 7, "duplicates": 0},
    )
    await wait_for_status(crmd_server, "p0@x.io", "DELIVERED")
    bounced = await wait_for_status(crmd_server, "p1@x.io", "BOUNCED")
    assert "no such user" in bounced["reason"]
    for soft in ("p2@x.io", "p3@x.io"):
        assert (await wait_for_time(crmd_server, soft, "SOFT_BOUNCED"))["status"] == "SENT"
    await wait_for_status(crmd_server, "p4@x.io", "COMPLAINED")
    await wait_for_status(crmd_server, "p5@x.io", "CLICKED")
    held = await wait_for_suppression(crmd_server, "p1@x.io")
    assert held["p1@x.io"] == "bounce"
    assert not {"p0@x.io", "p2@x.io", "p3@x.io", "p5@x.io"} & set(held)


async def test_forged_altered_stale_unknown_and_huge_batches_change_nothing(
    mailbox: Mailbox, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 2)
    bounce = [event("bounce", sent.crmd_id("p0@x.io"), type="bounce")]
    before = await queued(crmd_server)

    assert (await post(crmd_server, "sendgrid", *signed(bounce, key=ANOTHER)))[0] == 401
    body, headers = signed([event("delivered", sent.crmd_id("p0@x.io"))])
    altered = body.replace(b"delivered", b"spamreport")
    assert (await post(crmd_server, "sendgrid", altered, headers))[0] == 401
    status, answer = await post(crmd_server, "sendgrid", *signed(bounce, at=time.time() - 3600))
    assert status == 401 and "stale" in answer["error"]["message"]
    assert (await post(crmd_server, "sendgrid", body))[0] == 401  # unsigned
    assert (await post(crmd_server, "sendgrid", TEN_MB, headers))[0] == 413
    assert await queued(crmd_server) == before
    assert counted(crmd_server, "sendgrid", "rejected") == 4

    stranger = event("bounce", "", type="bounce")
    del stranger["crmd_message_id"]  # mail the provider carried for someone else
    assert await post(crmd_server, "sendgrid", *signed([stranger])) == (
        202,
        {"accepted": 0, "duplicates": 0},
    )
    assert counted(crmd_server, "sendgrid", "unnamed") == 1
    assert await queued(crmd_server) == before
    assert (await log_of(crmd_server, "p0@x.io"))["status"] == "SENT"
    assert await suppressed(crmd_server) == {}
