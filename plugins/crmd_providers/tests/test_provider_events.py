"""Each adapter's reading of its provider's events, pure: the statuses, stable event
ids, and the URLs an SNS message may send crmd to."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import msgspec
import pytest
from crmd_providers import mailgun, postmark, sendgrid, ses
from crmd_providers.events import check_fresh, from_message_id_header, short_id
from crmd_providers.sns import Envelope, checked_sns_url, redirected, signed_text

AT = 1777627800  # 2026-05-01T09:30:00Z
SENDGRID_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7"
    "yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
)


def test_a_redelivered_event_has_the_same_event_id_and_another_event_another():
    event = {"event": "open", "timestamp": AT, "crmd_message_id": "m1"}  # no sg_event_id
    first, again = sendgrid.receipt(event), sendgrid.receipt(json.loads(json.dumps(event)))
    assert first[0].event_id == again[0].event_id
    assert sendgrid.receipt(event | {"timestamp": AT + 1})[0].event_id != first[0].event_id
    body = json.dumps({"RecordType": "Open", "ReceivedAt": "2026-05-01T09:30:00Z"})
    digest = hashlib.sha256(body.encode()).hexdigest()
    source = postmark.PostmarkSource(postmark.Settings(username="u", password="p" * 16))
    assert [e.event_id for e in source.parse_receipts({}, body.encode())] == [
        f"postmark:Open:{digest[:40]}"
    ]
    assert short_id("mailgun", "x" * 500) != short_id("mailgun", "x" * 499)
    assert len(short_id("mailgun", "x" * 500)) <= 200


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"event": "failed", "severity": "permanent"}, "BOUNCED"),
        ({"event": "failed", "severity": "temporary"}, "SOFT_BOUNCED"),
        ({"event": "failed"}, "SOFT_BOUNCED"),  # no severity: never a suppression
        ({"event": "complained"}, "COMPLAINED"),
        ({"event": "accepted"}, None),
        ({"event": "unsubscribed"}, None),
    ],
)
def test_mailgun_statuses(data: dict[str, object], status: str | None):
    found = mailgun.receipt({"id": "e", "timestamp": AT, **data})
    assert [e.status for e in found] == ([status] if status else [])


@pytest.mark.parametrize(
    ("kind", "detail", "status"),
    [
        ("Bounce", {"bounceType": "Permanent"}, "BOUNCED"),
        ("Bounce", {"bounceType": "Transient"}, "SOFT_BOUNCED"),
        ("Bounce", {"bounceType": "Undetermined"}, "SOFT_BOUNCED"),
        ("Reject", {"reason": "Bad content"}, "FAILED"),
        ("Send", {}, None),
        ("DeliveryDelay", {}, None),
    ],
)
def test_ses_statuses(kind: str, detail: dict[str, object], status: str | None):
    event = {"eventType": kind, "mail": {"timestamp": "2026-05-01T09:30:00Z"}, kind.lower(): detail}
    assert [e.status for e in ses.ses_events(event, "sns-1")] == ([status] if status else [])


def test_an_ses_bounce_is_one_receipt_per_recipient_with_ids_stable_per_sns_message():
    bounced = [{"emailAddress": "a@x.io"}, {"emailAddress": "b@x.io"}]
    event = {
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": bounced},
        "mail": {"timestamp": "2026-05-01T09:30:00Z"},
    }
    found = ses.ses_events(event, "sns-1")
    assert [e.event_id for e in found] == ["ses:sns-1:0", "ses:sns-1:1"]
    assert found[0].at == datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def test_a_message_id_header_names_crmds_id_and_nothing_else_does():
    assert from_message_id_header("<65f0.abc=3Ar1@shop.example>") == "65f0.abc:r1"
    assert from_message_id_header("65f0.abc@shop.example") == "65f0.abc"
    for wrong in ("", "no-at-sign", "<a b@x>", None, 42, "<@x>"):
        assert from_message_id_header(wrong) == ""


def test_freshness_is_either_side_of_now():
    assert check_fresh(str(AT), 300, AT + 299) == AT
    for stamp, now in ((str(AT), AT + 301), (str(AT), AT - 301), ("soon", AT), ("nan", AT)):
        with pytest.raises(ValueError):
            check_fresh(stamp, 300, now)


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
    ],
)
def test_an_sns_url_is_https_on_an_sns_host(url: str):
    assert checked_sns_url(url) == url
    redirect = redirected(url, "http://127.0.0.1:8123")
    assert redirect == "http://127.0.0.1:8123/SimpleNotificationService-1.pem"


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
        "https://evil.example/x.pem",
        "https://sqs.us-east-1.amazonaws.com/x.pem",
        "https://sns.amazonaws.com/x.pem",
        "ftp://sns.us-east-1.amazonaws.com/x.pem",
        "https://a:b@sns.us-east-1.amazonaws.com/x.pem",
    ],
)
def test_any_other_url_is_refused(url: str):
    with pytest.raises(ValueError, match=r"sns\.<region>\.amazonaws\.com"):
        checked_sns_url(url)


def test_the_string_signed_has_the_subject_only_when_the_message_has_one():
    base = {
        "Type": "Notification",
        "MessageId": "m",
        "TopicArn": "t",
        "Message": "hi",
        "Timestamp": "2026-05-01T09:30:00Z",
        "SignatureVersion": "2",
        "Signature": "",
        "SigningCertURL": "",
    }
    without = signed_text(msgspec.json.decode(json.dumps(base), type=Envelope))
    assert without.decode().splitlines() == [
        *("Message", "hi", "MessageId", "m", "Timestamp", "2026-05-01T09:30:00Z"),
        *("TopicArn", "t", "Type", "Notification"),
    ]
    subject = json.dumps(base | {"Subject": ""})
    with_subject = signed_text(msgspec.json.decode(subject, type=Envelope))
    assert b"MessageId\nm\nSubject\n\nTimestamp" in with_subject


def test_one_unreadable_event_in_a_sendgrid_batch_is_dropped_alone():
    source = sendgrid.SendGridSource(sendgrid.Settings(public_key=SENDGRID_KEY), Said())
    batch = [
        {"event": "delivered", "timestamp": AT, "sg_event_id": "a", "crmd_message_id": "m1"},
        {"event": "delivered", "timestamp": "yesterday", "sg_event_id": "b"},
        {"event": "open", "timestamp": AT, "sg_event_id": "c", "crmd_message_id": "m2"},
        "not an event",
    ]
    found = source.parse_receipts({}, json.dumps(batch).encode())
    read = [(e.event_id, e.message_id) for e in found]
    assert read == [("sendgrid:a", "m1"), ("sendgrid:c", "m2")]
    assert source.log.lines == [("sendgrid.events_unreadable", {"count": 1})]


class Said:
    """A logger that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append((event, fields))
