"""The message as the relay sees it, and what its answers mean: pure, no socket."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default

import pytest
from crmd_smtp.mail import answer_for, build_message, message_id_header

from crmd.plugins import Failed, OutgoingMessage, Retry

AT = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def parsed(message: OutgoingMessage) -> EmailMessage:
    raw = build_message(message, "Shop <news@shop.example>", "shop.example", at=AT)
    result = email.message_from_bytes(raw, policy=default)
    assert isinstance(result, EmailMessage)
    return result


def test_a_text_message_is_plain_text_with_crmds_message_id():
    mail = parsed(OutgoingMessage("65f0.abc", "asha@example.com", "", "Hi Asha"))
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content().strip() == "Hi Asha"
    assert mail["Message-ID"] == "<65f0.abc@shop.example>"
    assert (mail["From"], mail["To"]) == ("Shop <news@shop.example>", "asha@example.com")
    assert mail["Date"] == "Fri, 01 May 2026 09:30:00 +0000"
    assert mail["Subject"] is None and mail["List-Unsubscribe"] is None


def test_an_html_body_makes_it_multipart_alternative_with_both_parts():
    message = OutgoingMessage("m1", "a@x.io", "", "Hi", subject="Sale", html="<p>Hi</p>")
    mail = parsed(message)
    assert mail.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content().strip() for part in mail.iter_parts()}
    assert parts == {"text/plain": "Hi", "text/html": "<p>Hi</p>"}
    assert mail["Subject"] == "Sale"


def test_an_unsubscribe_link_adds_the_one_click_headers():
    url = "https://crmd.example/u/abc.def"
    mail = parsed(OutgoingMessage("m1", "a@x.io", "", "Hi", unsubscribe_url=url))
    assert mail["List-Unsubscribe"] == f"<{url}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_long_link_is_one_plain_header_line_on_the_wire():
    # Parsed with policy.default, an RFC 2047 encoded-word reads back as the URL; the
    # bytes are what a mailbox provider reads, and they must hold the link as it is.
    url = "https://crmd.example.com/u/" + "AbC_-9" * 25
    raw = build_message(
        OutgoingMessage("m1", "a@x.io", "", "Hi", unsubscribe_url=url), "n@s.io", "s.io"
    )
    lines = raw.split(b"\r\n")
    assert f"List-Unsubscribe: <{url}>".encode() in lines
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0]
    with pytest.raises(ValueError):
        build_message(
            OutgoingMessage("m1", "a@x.io", "", "Hi", unsubscribe_url=url + "\r\nBcc: x@y.z"),
            "n@s.io",
            "s.io",
        )


def test_non_ascii_subject_and_body_survive_the_trip():
    text = "Namaste Zoë, ₹500 off — " + "x" * 1200  # a line longer than SMTP allows
    mail = parsed(OutgoingMessage("m1", "a@x.io", "", text, subject="Diwali ✨ sale"))
    assert mail["Subject"] == "Diwali ✨ sale"
    assert mail.get_content().rstrip("\r\n") == text  # the wire's line end, CRLF, decoded
    raw = build_message(OutgoingMessage("m1", "a@x.io", "", text), "n@s.io", "s.io")
    assert raw.isascii() and max(len(line) for line in raw.splitlines()) <= 998


def test_a_retry_rounds_id_is_escaped_into_a_valid_message_id():
    assert message_id_header("65f0.abc:r2", "s.io") == "<65f0.abc=3Ar2@s.io>"
    assert message_id_header("a=b c", "s.io") == "<a=3Db=20c@s.io>"


def test_a_line_break_in_the_address_is_refused_not_sent():
    with pytest.raises(ValueError):
        build_message(OutgoingMessage("m1", "a@x.io\r\nBcc: all@x.io", "", "Hi"), "n@s.io", "s.io")


def test_5xx_fails_for_good_with_the_relays_words_and_4xx_retries():
    assert answer_for("m1", 550, "5.1.1 no such user") == Failed("m1", "550 5.1.1 no such user")
    retry = answer_for("m1", 451, "4.3.0 try later")
    assert isinstance(retry, Retry) and retry.reason == "451 4.3.0 try later"
    assert retry.after_seconds > 0
