"""The smtp vendor's mail carries crmd's id where each provider's events echo it, and
each adapter reads it back from there: pure, no socket."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default

import pytest
from crmd_providers import mailgun, postmark, sendgrid, ses
from crmd_providers.events import from_message_id_header
from crmd_smtp.mail import build_message, message_id_header, provider_headers

from crmd.plugins import OutgoingMessage

KEY = "65f0c0ffee0123456789abcd.0123456789abcdef:r2"
"""A send key of a retried round: its ':' is escaped in the Message-ID."""


def mail(provider: str) -> EmailMessage:
    message = OutgoingMessage(KEY, "asha@example.com", "", "Hi", subject="Sale")
    raw = build_message(message, "news@shop.example", "shop.example", provider=provider)
    parsed = email.message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize("provider", ["", "ses", "sendgrid", "postmark", "mailgun"])
def test_every_message_carries_crmds_id_and_its_message_id(provider: str):
    sent = mail(provider)
    assert sent["X-Crmd-Message-Id"] == KEY
    assert from_message_id_header(str(sent["Message-ID"])) == KEY
    assert str(sent["Message-ID"]) == message_id_header(KEY, "shop.example")


def test_each_provider_gets_the_id_in_its_own_header_and_reads_it_back():
    at = int(datetime(2026, 5, 1, tzinfo=UTC).timestamp())
    smtpapi = json.loads(str(mail("sendgrid")["X-SMTPAPI"]))
    # SendGrid puts each unique argument at the top level of each event.
    event = {"event": "delivered", "timestamp": at, "sg_event_id": "e1", **smtpapi["unique_args"]}
    assert [r.message_id for r in sendgrid.receipt(event)] == [KEY]

    variables = json.loads(str(mail("mailgun")["X-Mailgun-Variables"]))
    data = {"event": "delivered", "timestamp": at, "id": "e1", "user-variables": variables}
    assert [r.message_id for r in mailgun.receipt(data)] == [KEY]

    metadata = {"crmd_message_id": str(mail("postmark")["X-PM-Metadata-crmd_message_id"])}
    record = {"RecordType": "Delivery", "DeliveredAt": "2026-05-01T09:30:00Z", "Metadata": metadata}
    assert [r.message_id for r in postmark.receipt(record, "d" * 64)] == [KEY]

    original = [{"name": k, "value": v} for k, v in mail("ses").items()]
    assert ses.crmd_message_id({"headers": original}) == KEY
    # Without the original headers, SES's commonHeaders still give the Message-ID.
    common = {"commonHeaders": {"messageId": str(mail("ses")["Message-ID"])}}
    assert ses.crmd_message_id(common) == KEY


def test_only_the_providers_headers_of_the_named_one_are_added():
    assert [name for name, _ in provider_headers("m1")] == ["X-Crmd-Message-Id"]
    assert [name for name, _ in provider_headers("m1", "ses")] == ["X-Crmd-Message-Id"]
    assert "X-SMTPAPI" not in mail("mailgun") and "X-Mailgun-Variables" not in mail("sendgrid")
    with pytest.raises(ValueError, match="unknown provider 'sparkpost'"):
        provider_headers("m1", "sparkpost")


@pytest.mark.parametrize("provider", ["sendgrid", "mailgun", "postmark"])
def test_the_headers_are_plain_on_the_wire_never_encoded_words(provider: str):
    message = OutgoingMessage(KEY, "asha@example.com", "", "Hi")
    raw = build_message(message, "news@shop.example", "shop.example", provider=provider)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?" not in head
    unfolded = head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b"\t")
    assert KEY.encode() in unfolded.split(b"X-Crmd-Message-Id: ", 1)[1].split(b"\r\n")[0]
    assert unfolded.count(KEY.encode()) == 2  # crmd's header and the provider's
