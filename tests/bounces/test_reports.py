"""Reading reports that came back, and the message each names: pure, on mail shaped as
real servers write it (``samples``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmd.bounces.naming import forged_token, key_of_message_id, named_message, receipt_for
from crmd.bounces.reports import Report, Unusable, read_report
from crmd.messages import message_id
from crmd.verp import ReturnPaths
from tests.bounces import samples
from tests.conftest import examples

PATHS = ReturnPaths.from_secret(
    "a-test-secret-of-32-bytes-or-more!!", "news", "bounces.shop.example"
)
LOG = message_id("0123456789abcdef01234567", "K1")
HEADER = f"<{LOG}@shop.example>"
TO = PATHS.address(LOG)


def report(raw: bytes) -> Report:
    found = read_report(raw)
    assert isinstance(found, Report), found
    return found


def test_a_postfix_hard_bounce_is_bounced_with_status_and_diagnostic():
    found = report(samples.postfix_dsn(TO, HEADER))
    assert found.status == "BOUNCED"
    assert found.reason == "5.1.1 550 5.1.1 <p1@x.io>: Recipient address rejected: User unknown"
    assert found.message_ids == (HEADER,)
    assert found.report_id == "<20261207004005.4QxYz1@mx.x.io>"


def test_the_original_may_come_as_its_headers_alone():
    found = report(samples.postfix_dsn(TO, HEADER, headers_only=True))
    assert (found.status, found.message_ids) == ("BOUNCED", (HEADER,))


def test_an_exchange_report_with_a_folded_diagnostic():
    found = report(samples.exchange_dsn(TO, HEADER))
    assert found.status == "BOUNCED"
    assert found.reason == (
        "5.1.10 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP "
        "address lookup"
    )
    assert found.message_ids == (HEADER,) and TO in found.senders[0]


def test_a_delay_is_a_soft_bounce():
    found = report(samples.delayed_dsn(TO, HEADER))
    assert found.status == "SOFT_BOUNCED" and found.reason.startswith("4.4.1 connect to")


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "expected"),
    [
        ("failed", "4.2.2", "smtp; 452 4.2.2 Mailbox full", "SOFT_BOUNCED"),
        ("failed", "5.7.1", "smtp; 550 5.7.1 Message rejected as spam", "BOUNCED"),
        ("failed", "", "smtp; 550 no such user here", "BOUNCED"),  # no Status: the reply's
        ("failed", "", "smtp; 421 try later", "SOFT_BOUNCED"),
        ("delivered", "2.0.0", "smtp; 250 ok", "DELIVERED"),
    ],
)
def test_each_action_and_status_class(action: str, status: str, diagnostic: str, expected: str):
    raw = samples.postfix_dsn(TO, HEADER, action=action, status=status, diagnostic=diagnostic)
    assert report(raw).status == expected


@pytest.mark.parametrize("action", ["relayed", "expanded"])
def test_a_report_of_no_failure_says_nothing(action: str):
    raw = samples.postfix_dsn(TO, HEADER, action=action, status="2.0.0")
    assert read_report(raw) == Unusable("no_outcome", "no failed, delayed or delivered recipient")


def test_an_arf_abuse_report_is_a_complaint():
    found = report(samples.arf_report(TO, HEADER, mail_from=TO))
    assert (found.status, found.reason) == ("COMPLAINED", "complaint")
    assert found.message_ids == (HEADER,) and f"<{TO}>" in found.senders


@pytest.mark.parametrize("kind", ["not-spam", "auth-failure", "virus", "other", ""])
def test_feedback_that_is_no_complaint_is_dropped(kind: str):
    found = read_report(samples.arf_report(TO, HEADER, feedback_type=kind))
    assert isinstance(found, Unusable) and found.why == "not_a_complaint"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (samples.out_of_office(TO, HEADER), "not_a_report"),
        (samples.broken_mime(TO, HEADER), "broken"),
        (b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nx", "broken"),
        (b"", "not_a_report"),
        (
            b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n\r\nhi\r\n--b--\r\n",
            "not_a_report",
        ),
    ],
)
def test_mail_that_is_no_usable_report(raw: bytes, why: str):
    found = read_report(raw)
    assert isinstance(found, Unusable) and found.why == why


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=examples(300))
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=4000))
def test_no_input_raises(noise: bytes, at: int):
    dsn = samples.postfix_dsn(TO, HEADER)
    for raw in (noise, dsn[:at] + noise, dsn[:at] + noise + dsn[at:]):
        assert isinstance(read_report(raw), Report | Unusable)


# -- which message -----------------------------------------------------------------


def test_the_verp_recipient_names_the_message_first():
    found = report(samples.postfix_dsn(TO, "<someone-else@shop.example>"))
    assert named_message(found, [TO], PATHS, "shop.example") == named_message(
        found, [TO.upper()], PATHS, "shop.example"
    )
    named = named_message(found, [TO], PATHS, "shop.example")
    assert named is not None and (named.key, named.how) == (LOG, "verp")


def test_without_verp_the_attached_message_id_names_it():
    found = report(samples.postfix_dsn("news@shop.example", HEADER))
    named = named_message(found, ["news@bounces.shop.example"], PATHS, "shop.example")
    assert named is not None and (named.key, named.how) == (LOG, "message_id")


def test_an_arf_reports_original_mail_from_names_it():
    found = report(samples.arf_report("fbl@bounces.shop.example", "<x@elsewhere>", mail_from=TO))
    named = named_message(found, ["fbl@bounces.shop.example"], PATHS, "shop.example")
    assert named is not None and (named.key, named.how) == (LOG, "verp")


def test_a_forged_token_names_nothing():
    forged = TO.replace(TO[10], "a" if TO[10] != "a" else "b", 1)
    found = report(samples.postfix_dsn(forged, "<unrelated@x.io>"))
    assert named_message(found, [forged], PATHS, "shop.example") is None
    assert forged_token([forged], PATHS) and not forged_token([TO], PATHS)
    assert forged_token([f"<{forged.upper()}>"], PATHS)  # however written
    # Only the sender's own local part carries tokens: another's "+" is not forged.
    other = "postmaster+" + forged.partition("+")[2]
    assert not forged_token([other, "news@shop.example"], PATHS)


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (HEADER, LOG),
        (f"<{LOG}=3Ar2@shop.example>", f"{LOG}:r2"),  # a retry round, as the vendor writes it
        (f"<{LOG}@SHOP.EXAMPLE>", LOG),
        (f"<{LOG}@other.example>", None),  # another sender's message
        ("<0123@shop.example>", None),
        ("<test-0123456789abcdef01234567@shop.example>", None),
        ("", None),
    ],
)
def test_message_ids_of_crmds_shape_only(header: str, key: str | None):
    assert key_of_message_id(header, "shop.example") == key


def test_the_same_report_again_is_the_same_event():
    at = datetime(2026, 12, 7, tzinfo=UTC)
    first = receipt_for(report(samples.postfix_dsn(TO, HEADER)), LOG, at)
    again = receipt_for(report(samples.postfix_dsn(TO, HEADER)), LOG, datetime.now(UTC))
    other = receipt_for(report(samples.postfix_dsn(TO, HEADER, report_id="<2@mx>")), LOG, at)
    assert first.event_id == again.event_id != other.event_id
    assert (first.message_id, first.status) == (LOG, "BOUNCED")
