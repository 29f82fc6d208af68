"""Amazon SES's events through SNS: each SNS message signed as AWS signs it (RSA with
SHA-1 or SHA-256 over the documented string), its certificate served by a local stand-in
for sns.<region>.amazonaws.com that crmd is pointed at (``sns_endpoint``)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from crmd_providers.sns import checked_sns_url
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
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

TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem"
SUBSCRIBE = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token="


def certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    made = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return made.public_bytes(serialization.Encoding.PEM)


AWS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Aws:
    """The stand-in for sns.<region>.amazonaws.com: the signing certificate, and the
    SubscribeURL that confirms a subscription."""

    url: str = ""
    fetched: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)

    async def certificate(self, request: web.Request) -> web.Response:
        self.fetched.append(request.path)
        if "slow" in request.path:
            await asyncio.sleep(30)
        return web.Response(body=certificate(AWS_KEY), content_type="application/x-pem-file")

    async def confirm(self, request: web.Request) -> web.Response:
        assert request.query["Action"] == "ConfirmSubscription"
        self.confirmed.append(request.query["Token"])
        return web.Response(text="<ConfirmSubscriptionResponse/>", content_type="text/xml")


@pytest.fixture
async def aws(aiohttp_server: Any) -> AsyncIterator[Aws]:
    stand_in = Aws()
    app = web.Application()
    app.router.add_get("/{name}.pem", stand_in.certificate)
    app.router.add_get("/", stand_in.confirm)
    server = await aiohttp_server(app)
    stand_in.url = str(server.make_url("")).rstrip("/")
    yield stand_in


@pytest.fixture
def crmd_plugins(mailbox: Mailbox, aws: Aws) -> dict[str, dict[str, Any]]:
    return {
        "smtp": {**SMTP_SETTINGS, "port": mailbox.port},
        "ses": {"topic_arns": [TOPIC], "sns_endpoint": aws.url},
    }


def string_to_sign(message: dict[str, Any]) -> bytes:
    """As AWS documents it: the fields in this order, each name and value on a line."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def sns(
    kind: str = "Notification",
    *,
    message: str,
    version: str = "2",
    key: rsa.RSAPrivateKey = AWS_KEY,
    topic: str = TOPIC,
    cert_url: str = CERT_URL,
    **more: Any,
) -> bytes:
    body = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": message,
        "Timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
        **more,
    }
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(string_to_sign(body), padding.PKCS1v15(), algorithm)
    body["Signature"] = base64.b64encode(signature).decode()
    return json.dumps(body).encode()


def ses_event(kind: str, crmd_id: str, field: str = "eventType", **detail: Any) -> str:
    """An SES event as SES publishes it, the mail's original headers included."""
    now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    mail = {
        "timestamp": now,
        "source": "news@shop.example",
        "messageId": "010001" + uuid.uuid4().hex,
        "destination": ["someone@x.io"],
        "headersTruncated": False,
        "headers": [{"name": "X-Crmd-Message-Id", "value": crmd_id}] if crmd_id else [],
        "commonHeaders": {"from": ["news@shop.example"], "subject": "Sale"},
    }
    return json.dumps({field: kind, "mail": mail, kind.lower(): {"timestamp": now, **detail}})


async def test_ses_events_in_both_forms_move_each_message_and_a_permanent_bounce_suppresses(
    mailbox: Mailbox, aws: Aws, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 6)
    ids = [sent.crmd_id(f"p{i}@x.io") for i in range(6)]
    bounced = [{"emailAddress": "p1@x.io", "diagnosticCode": "smtp; 550 5.1.1 unknown user"}]
    events = [
        ses_event("Delivery", ids[0], "notificationType", recipients=["p0@x.io"]),
        ses_event(
            "Bounce",
            ids[1],
            "notificationType",
            bounceType="Permanent",
            bounceSubType="General",
            bouncedRecipients=bounced,
        ),
        ses_event("Bounce", ids[2], bounceType="Transient", bouncedRecipients=[{}]),
        ses_event("Complaint", ids[3], complainedRecipients=[{"emailAddress": "p3@x.io"}]),
        ses_event("Open", ids[4], userAgent="Mozilla/5.0"),
        ses_event("Click", ids[5], link="https://shop.example/sale"),
    ]
    for i, message in enumerate(events):
        version = "1" if i % 2 else "2"  # SHA1withRSA and SHA256withRSA alike
        body = sns(message=message, version=version)
        assert await post(crmd_server, "ses", body) == (202, {"accepted": 1, "duplicates": 0})
    await wait_for_status(crmd_server, "p0@x.io", "DELIVERED")
    assert "550 5.1.1" in (await wait_for_status(crmd_server, "p1@x.io", "BOUNCED"))["reason"]
    assert (await wait_for_time(crmd_server, "p2@x.io", "SOFT_BOUNCED"))["status"] == "SENT"
    await wait_for_status(crmd_server, "p3@x.io", "COMPLAINED")
    await wait_for_status(crmd_server, "p4@x.io", "OPENED")
    await wait_for_status(crmd_server, "p5@x.io", "CLICKED")
    held = await wait_for_suppression(crmd_server, "p1@x.io")
    assert held["p1@x.io"] == "bounce" and not {"p0@x.io", "p2@x.io"} & set(held)
    assert aws.fetched == ["/SimpleNotificationService-0123abcd.pem"]  # fetched once, kept


async def test_the_message_id_header_alone_finds_the_message(
    mailbox: Mailbox, aws: Aws, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 1)
    event = json.loads(ses_event("Delivery", "", "notificationType"))
    event["mail"]["commonHeaders"]["messageId"] = str(sent.mails["p0@x.io"]["Message-ID"])
    assert (await post(crmd_server, "ses", sns(message=json.dumps(event))))[0] == 202
    await wait_for_status(crmd_server, "p0@x.io", "DELIVERED")


async def test_a_subscription_is_confirmed_only_when_signed_and_for_a_configured_topic(
    aws: Aws, crmd_server: RunningCrmd
):
    def confirmation(token: str, **more: Any) -> bytes:
        return sns(
            "SubscriptionConfirmation",
            message="You have chosen to subscribe to the topic.",
            Token=token,
            SubscribeURL=SUBSCRIBE + token,
            **more,
        )

    assert await post(crmd_server, "ses", confirmation("t1")) == (
        202,
        {"accepted": 0, "duplicates": 0},
    )
    assert aws.confirmed == ["t1"]
    forged = confirmation("t2", key=OTHER_KEY)
    assert (await post(crmd_server, "ses", forged))[0] == 401
    elsewhere = confirmation("t3", topic="arn:aws:sns:eu-west-1:999999999999:other")
    assert (await post(crmd_server, "ses", elsewhere))[0] == 401
    # Signed, but its SubscribeURL is not AWS's: never followed.
    body = sns(
        "SubscriptionConfirmation",
        message="hi",
        Token="t4",
        SubscribeURL="https://attacker.example/?Action=ConfirmSubscription&Token=t4",
    )
    assert (await post(crmd_server, "ses", body))[0] == 422
    assert aws.confirmed == ["t1"]


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.eu-west-1.amazonaws.com.attacker.example/cert.pem",
        "https://attacker.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-0123abcd.pem",
        "https://user@sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.eu-west-1.amazonaws.com/anything/else.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123abcd.pem?x=1",
        # An S3 host (the bucket named "sns"), not a region's SNS host.
        "https://sns.s3-external-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.s3.amazonaws.com/SimpleNotificationService-0123abcd.pem",
    ],
)
async def test_a_certificate_from_anywhere_but_sns_is_never_fetched(
    mailbox: Mailbox,
    aws: Aws,
    crmd_server: RunningCrmd,
    crmd_client: aiohttp.ClientSession,
    cert_url: str,
):
    sent = await send_campaign(crmd_client, mailbox, 1)
    bounce = ses_event("Bounce", sent.crmd_id("p0@x.io"), bounceType="Permanent")
    # Signed by a key of the attacker's, whose certificate it would serve.
    body = sns(message=bounce, key=OTHER_KEY, cert_url=cert_url)
    status, answer = await post(crmd_server, "ses", body)
    assert status == 401 and "sns" in answer["error"]["message"].lower()
    assert aws.fetched == [] and await queued(crmd_server) == 0
    assert (await log_of(crmd_server, "p0@x.io"))["status"] == "SENT"


@pytest.mark.parametrize(
    "host",
    [
        "sns.eu-west-1.amazonaws.com",
        "sns.ap-southeast-2.amazonaws.com",
        "sns.il-central-1.amazonaws.com",
        "sns.us-gov-west-1.amazonaws.com",
        "sns.cn-north-1.amazonaws.com.cn",
        "sns.cn-northwest-1.amazonaws.com.cn",
    ],
)
def test_the_sns_host_of_every_kind_of_region_is_taken(host: str):
    url = f"https://{host}/SimpleNotificationService-0123abcd.pem"
    assert checked_sns_url(url) == url


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")


async def test_a_message_signed_longer_ago_or_further_ahead_than_max_age_is_refused(
    mailbox: Mailbox, aws: Aws, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    """A captured complaint, signed by AWS years ago, cannot be posted again today."""
    sent = await send_campaign(crmd_client, mailbox, 1)
    complaint = ses_event("Complaint", sent.crmd_id("p0@x.io"), complainedRecipients=[{}])
    for at in ("2024-12-07T01:00:00.000Z", iso(time.time() - 3700), iso(time.time() + 3700)):
        status, answer = await post(crmd_server, "ses", sns(message=complaint, Timestamp=at))
        assert status == 401 and "stale" in answer["error"]["message"], at
    unusable = sns(message=complaint, Timestamp="yesterday")
    status, answer = await post(crmd_server, "ses", unusable)
    assert status == 401 and "Timestamp" in answer["error"]["message"]
    assert counted(crmd_server, "ses", "rejected") == 4
    assert aws.fetched == []  # refused before any certificate is fetched
    assert await queued(crmd_server) == 0
    assert (await log_of(crmd_server, "p0@x.io"))["status"] == "SENT"
    assert await suppressed(crmd_server) == {}
    # Within max_age (an hour by default), SNS's own retries are taken.
    late = sns(message=complaint, Timestamp=iso(time.time() - 3000))
    assert await post(crmd_server, "ses", late) == (202, {"accepted": 1, "duplicates": 0})
    await wait_for_status(crmd_server, "p0@x.io", "COMPLAINED")


async def test_a_message_id_again_with_another_body_is_a_replay_the_same_body_a_redelivery(
    mailbox: Mailbox, aws: Aws, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 2)
    delivery = sns(message=ses_event("Delivery", sent.crmd_id("p0@x.io")))
    assert (await post(crmd_server, "ses", delivery))[0] == 202
    # SNS delivering the same message again: taken.
    assert (await post(crmd_server, "ses", delivery))[0] == 202
    # The same signed message written out again (still AWS's signature), and another
    # message under the same MessageId: each a replay.
    captured = json.loads(delivery)
    rewritten = json.dumps(captured, indent=1).encode()
    bounce = ses_event("Bounce", sent.crmd_id("p1@x.io"), bounceType="Permanent")
    same_id = sns(message=bounce, MessageId=captured["MessageId"])
    for body in (rewritten, same_id):
        status, answer = await post(crmd_server, "ses", body)
        assert status == 401 and "replayed" in answer["error"]["message"]
    assert counted(crmd_server, "ses", "rejected") == 2
    await wait_for_status(crmd_server, "p0@x.io", "DELIVERED")
    assert (await log_of(crmd_server, "p1@x.io"))["status"] == "SENT"
    assert await suppressed(crmd_server) == {}


async def test_forged_altered_unknown_and_huge_messages_change_nothing(
    mailbox: Mailbox, aws: Aws, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 1)
    bounce = ses_event("Bounce", sent.crmd_id("p0@x.io"), bounceType="Permanent")
    assert (await post(crmd_server, "ses", sns(message=bounce, key=OTHER_KEY)))[0] == 401
    delivery = sns(message=ses_event("Delivery", sent.crmd_id("p0@x.io")))
    altered = delivery.replace(b"Delivery", b"Bounce")
    assert (await post(crmd_server, "ses", altered))[0] == 401
    unsupported = sns(message=bounce, version="3")
    assert (await post(crmd_server, "ses", unsupported))[0] == 401
    other_topic = sns(message=bounce, topic="arn:aws:sns:eu-west-1:999999999999:other")
    assert (await post(crmd_server, "ses", other_topic))[0] == 401
    assert (await post(crmd_server, "ses", TEN_MB))[0] == 413
    assert counted(crmd_server, "ses", "rejected") == 4
    stranger = sns(message=ses_event("Bounce", "", bounceType="Permanent"))
    assert await post(crmd_server, "ses", stranger) == (202, {"accepted": 0, "duplicates": 0})
    assert counted(crmd_server, "ses", "unnamed") == 1
    not_ses = sns(message="a plain text notification")
    assert (await post(crmd_server, "ses", not_ses))[0] == 422
    assert await queued(crmd_server) == 0
    assert (await log_of(crmd_server, "p0@x.io"))["status"] == "SENT"
    assert await suppressed(crmd_server) == {}


async def test_a_certificate_host_that_hangs_refuses_the_message_in_time(
    mailbox: Mailbox, aws: Aws, crmd_server: RunningCrmd, crmd_client: aiohttp.ClientSession
):
    sent = await send_campaign(crmd_client, mailbox, 1)
    bounce = ses_event("Bounce", sent.crmd_id("p0@x.io"), bounceType="Permanent")
    slow = CERT_URL.replace("0123abcd", "slow0123")
    started = time.monotonic()
    status, answer = await post(crmd_server, "ses", sns(message=bounce, cert_url=slow))
    assert status == 401 and "no answer in 4 s" in answer["error"]["message"]
    assert time.monotonic() - started < 10
    assert await queued(crmd_server) == 0
    assert (await log_of(crmd_server, "p0@x.io"))["status"] == "SENT"
