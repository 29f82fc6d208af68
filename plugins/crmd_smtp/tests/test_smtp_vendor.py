"""The smtp vendor against a real relay (aiosmtpd): what arrives, and what each answer
of the relay becomes. The vendor is made by its own hook, from a settings table, as
crmd makes it."""

from __future__ import annotations

import asyncio
import email
import json
import re
from collections.abc import AsyncIterator, Callable
from email.policy import compat32
from pathlib import Path
from typing import Any

import pytest
from crmd_smtp import SmtpVendor, crmd_vendors
from crmd_smtp import vendor as smtp_vendor
from smtp_relay import PASSWORD, USER, LocalRelay, self_signed_certificate, start_relay
from structlog.testing import capture_logs

from crmd.plugins import (
    Accepted,
    Failed,
    OutgoingMessage,
    PluginContext,
    PluginSettingsError,
    Retry,
    VendorMisconfigured,
)
from crmd.testing import sign_receipt

SECRET = "smtp-plugin-secret"
MakeVendor = Callable[..., SmtpVendor]


@pytest.fixture
async def make_vendor() -> AsyncIterator[MakeVendor]:
    made: list[SmtpVendor] = []

    def make(relay: LocalRelay, **settings: Any) -> SmtpVendor:
        table = {"host": "127.0.0.1", "port": relay.port, "from": "Shop <news@shop.example>"}
        table |= {"tls": "none", **settings}
        [vendor] = crmd_vendors(PluginContext("smtp", table, None, "http://crmd", SECRET))
        made.append(vendor)
        return vendor

    yield make
    for vendor in made:
        await vendor.close()


def batch(*recipients: str, **fields: str) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(f"c1.{i:04d}", to, "", f"Hi {to}", **fields)
        for i, to in enumerate(recipients)
    ]


async def test_batches_arrive_once_each_on_one_connection_and_each_is_sent_at_once(
    relay: LocalRelay, make_vendor: MakeVendor
):
    vendor = make_vendor(relay)
    first = batch("a@x.io", "b@x.io", "c@x.io", subject="Sale", html="<b>Sale</b>")
    second = [OutgoingMessage("c2.0001", "d@x.io", "", "Hello")]
    assert await vendor.send(first) == [
        Accepted(m.message_id, f"<{m.message_id}@shop.example>", sent=True) for m in first
    ]
    assert await vendor.send(second) == [Accepted("c2.0001", "<c2.0001@shop.example>", sent=True)]
    assert relay.sessions == 1  # the connection was kept for the second batch
    mails = relay.by_recipient()
    assert sorted(mails) == ["a@x.io", "b@x.io", "c@x.io", "d@x.io"]
    assert all(len(found) == 1 for found in mails.values())
    assert mails["a@x.io"][0]["Message-ID"] == "<c1.0000@shop.example>"
    assert mails["a@x.io"][0]["Subject"] == "Sale"
    assert mails["a@x.io"][0].get_content_type() == "multipart/alternative"
    assert {sender for sender, _ in relay.envelopes} == {"news@shop.example"}


async def test_a_message_with_a_return_path_is_sent_with_it_as_mail_from(
    relay: LocalRelay, make_vendor: MakeVendor
):
    vendor = make_vendor(relay)
    verp = "news+abc123@bounces.shop.example"
    sent = await vendor.send([*batch("a@x.io", return_path=verp), *batch("b@x.io")])
    assert [type(r) for r in sent] == [Accepted, Accepted]
    assert relay.envelopes == [(verp, ["a@x.io"]), ("news@shop.example", ["b@x.io"])]
    assert relay.received[0]["From"] == "Shop <news@shop.example>"  # the header stays


async def test_a_providers_relay_gets_crmds_id_where_that_providers_events_echo_it(
    relay: LocalRelay, make_vendor: MakeVendor
):
    await make_vendor(relay, provider="sendgrid").send(batch("a@x.io"))
    await make_vendor(relay).send(batch("b@x.io"))
    sendgrid, plain = relay.received
    assert sendgrid["X-Crmd-Message-Id"] == plain["X-Crmd-Message-Id"] == "c1.0000"
    assert json.loads(str(sendgrid["X-SMTPAPI"])) == {"unique_args": {"crmd_message_id": "c1.0000"}}
    assert plain["X-SMTPAPI"] is None  # only for the provider named


async def test_a_relay_that_refuses_the_bounce_sender_says_which_and_why(
    relay: LocalRelay, make_vendor: MakeVendor
):
    relay.mail_answers = ["553 5.7.1 sender not allowed"]
    verp = "news+abc123@bounces.shop.example"
    with pytest.raises(VendorMisconfigured) as refused:
        await make_vendor(relay).send(batch("a@x.io", return_path=verp))
    assert f"refused the sender '{verp}' (553 5.7.1 sender not allowed)" in str(refused.value)
    assert "[bounces] domain" in str(refused.value) and relay.received == []


async def test_the_one_click_headers_and_message_id_arrive_as_written_not_encoded(
    relay: LocalRelay, make_vendor: MakeVendor
):
    # Read back with policy.default, an RFC 2047 encoded-word looks like the link; the
    # bytes the relay took are what a mailbox provider reads.
    url = "https://crm.shop.example/u/" + "AbC_-9" * 25
    vendor = make_vendor(relay)
    assert [type(r) for r in await vendor.send(batch("a@x.io", unsubscribe_url=url))] == [Accepted]
    [raw] = relay.raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?" not in head
    headers = email.message_from_bytes(raw, policy=compat32)
    assert headers["List-Unsubscribe"] == f"<{url}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["Message-ID"] == "<c1.0000@shop.example>"
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in head + b"\r\n"


def test_every_callback_is_refused_even_one_signed_with_the_plugins_own_secret():
    table = {"host": "relay", "from": "a@b.io"}
    [vendor] = crmd_vendors(PluginContext("smtp", table, None, "http://crmd", SECRET))
    body = b'[{"messageId": "c1.0000", "vendorMessageId": "<c1.0000@b.io>"}]'
    with pytest.raises(ValueError) as refused:
        vendor.verify_receipt(sign_receipt(body, SECRET), body)
    assert str(refused.value) == "the smtp vendor takes no receipts"
    assert vendor.parse_receipts({}, body) == []


async def test_a_5xx_recipient_fails_with_the_relays_words_a_4xx_one_retries(
    relay: LocalRelay, make_vendor: MakeVendor
):
    relay.refuse = {"gone@x.io": "550 5.1.1 no such user", "full@x.io": "452 4.2.2 mailbox full"}
    vendor = make_vendor(relay)
    results = await vendor.send(batch("a@x.io", "gone@x.io", "full@x.io", "b@x.io"))
    assert results[0] == Accepted("c1.0000", "<c1.0000@shop.example>", sent=True)
    assert results[1] == Failed("c1.0001", "550 5.1.1 no such user")
    assert isinstance(results[2], Retry) and results[2].reason == "452 4.2.2 mailbox full"
    assert isinstance(results[3], Accepted)
    assert sorted(relay.by_recipient()) == ["a@x.io", "b@x.io"]


async def test_a_421_for_one_recipient_puts_off_that_one_and_the_rest_go_on_a_new_connection(
    relay: LocalRelay, make_vendor: MakeVendor
):
    # aiosmtplib closes the connection on a 421: the batch used to die with it, and the
    # same recipient first again on each retry kept the others from ever being sent.
    relay.refuse = {"busy@x.io": "421 4.7.0 try again later"}
    vendor = make_vendor(relay)
    results = await vendor.send(batch("a@x.io", "busy@x.io", "b@x.io", "c@x.io"))
    assert [type(r) for r in results] == [Accepted, Retry, Accepted, Accepted]
    assert isinstance(results[1], Retry) and results[1].reason == "421 4.7.0 try again later"
    assert sorted(relay.by_recipient()) == ["a@x.io", "b@x.io", "c@x.io"]
    assert relay.sessions == 2


async def test_a_421_to_mail_from_puts_off_that_message_and_the_rest_go_on_a_new_connection(
    relay: LocalRelay, make_vendor: MakeVendor
):
    # The sender is the same for every message: a 421 to it is the relay closing, not a
    # refusal, and the messages after it must not be tried on the closed connection.
    relay.mail_answers = ["250 OK", "421 4.3.2 shutting down"]
    vendor = make_vendor(relay)
    results = await vendor.send(batch("a@x.io", "b@x.io", "c@x.io", "d@x.io"))
    assert [type(r) for r in results] == [Accepted, Retry, Accepted, Accepted]
    assert isinstance(results[1], Retry) and results[1].reason == "421 4.3.2 shutting down"
    assert sorted(relay.by_recipient()) == ["a@x.io", "c@x.io", "d@x.io"]
    assert relay.sessions == 2


async def test_a_hang_up_mid_batch_retries_the_rest_and_the_next_batch_reconnects(
    relay: LocalRelay, make_vendor: MakeVendor
):
    relay.hang_up_after = 2
    vendor = make_vendor(relay)
    messages = batch("a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io")
    results = await vendor.send(messages)
    assert [type(r) for r in results] == [Accepted, Accepted, Retry, Retry, Retry]
    assert all("connection lost" in r.reason for r in results[2:] if isinstance(r, Retry))
    again = await vendor.send(messages[2:])
    assert all(isinstance(r, Accepted) for r in again)
    assert (relay.hung_up, relay.sessions) == (1, 2)
    assert sorted(relay.by_recipient()) == ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"]


async def test_a_relay_that_stops_answering_cannot_hold_the_batch_past_its_budget(
    relay: LocalRelay, make_vendor: MakeVendor, monkeypatch: Any
):
    monkeypatch.setattr(smtp_vendor, "BATCH_BUDGET", 1.0)  # crmd's 30 s, shrunk to wait less
    monkeypatch.setattr(smtp_vendor, "BEGIN_WITHIN", 0.8)
    relay.stall = {"slow@x.io": 3.0}
    vendor = make_vendor(relay)
    messages = batch("a@x.io", "slow@x.io", "b@x.io")
    async with asyncio.timeout(2.0):
        results = await vendor.send(messages)
    assert [type(r) for r in results] == [Accepted, Retry, Retry]
    assert isinstance(results[1], Retry) and results[1].reason == "connection lost: timed out"
    relay.stall = {}
    assert [type(r) for r in await vendor.send(messages[2:])] == [Accepted]


async def test_an_address_smtp_cannot_carry_fails_alone(relay: LocalRelay, make_vendor: MakeVendor):
    results = await make_vendor(relay).send(batch("zoë@x.io", "", "a@x.io"))
    assert isinstance(results[0], Failed) and "cannot be sent by e-mail" in results[0].reason
    assert results[1] == Failed("c1.0001", "no e-mail address")
    assert isinstance(results[2], Accepted) and sorted(relay.by_recipient()) == ["a@x.io"]


async def test_an_idle_connection_the_relay_closed_is_opened_again_unnoticed(
    relay: LocalRelay, make_vendor: MakeVendor
):
    vendor = make_vendor(relay)
    assert isinstance((await vendor.send(batch("a@x.io")))[0], Accepted)
    relay.hang_up_idle()
    await asyncio.sleep(0.1)
    assert [type(r) for r in await vendor.send(batch("b@x.io", "c@x.io"))] == [Accepted] * 2
    assert relay.sessions == 2 and relay.hung_up == 0


async def test_a_wrong_password_is_misconfiguration_naming_the_relay_never_the_password(
    login_relay: LocalRelay, make_vendor: MakeVendor
):
    wrong = make_vendor(login_relay, username=USER, password="not-the-password")
    with pytest.raises(VendorMisconfigured) as refused:
        await wrong.send(batch("a@x.io"))
    said = str(refused.value)
    assert f"refused the login of '{USER}'" in said and "535" in said
    assert "not-the-password" not in said
    checked = await wrong.check()
    assert not checked.ok and "535" in checked.detail and "not-the-password" not in checked.detail
    right = make_vendor(login_relay, username=USER, password=PASSWORD)
    assert (await right.check()).ok
    assert isinstance((await right.send(batch("a@x.io")))[0], Accepted)
    assert len(login_relay.received) == 1


async def test_no_login_for_a_relay_that_wants_one_is_misconfiguration(
    login_relay: LocalRelay, make_vendor: MakeVendor
):
    vendor = make_vendor(login_relay)
    with pytest.raises(VendorMisconfigured, match="wants a login"):
        await vendor.send(batch("a@x.io"))


async def test_starttls_trusts_the_relays_certificate_through_ca_file(
    tmp_path: Path, make_vendor: MakeVendor
):
    tls, certificate = self_signed_certificate(tmp_path)
    relay = LocalRelay()
    server = await start_relay(relay, tls)
    trusted = make_vendor(relay, tls="starttls", ca_file=str(certificate))
    assert isinstance((await trusted.send(batch("a@x.io")))[0], Accepted)
    untrusted = make_vendor(relay, tls="starttls")
    with pytest.raises(VendorMisconfigured, match="ca_file"):
        await untrusted.send(batch("b@x.io"))
    assert sorted(relay.by_recipient()) == ["a@x.io"]
    server.close()


async def test_an_unreachable_relay_is_retried_not_failed(make_vendor: MakeVendor):
    relay = LocalRelay()
    server = await start_relay(relay)
    server.close()
    await server.wait_closed()
    vendor = make_vendor(relay)
    results = await vendor.send(batch("a@x.io", "b@x.io"))
    assert all(isinstance(r, Retry) and "cannot reach" in r.reason for r in results)
    assert not (await vendor.check()).ok


async def test_an_unreachable_relay_is_logged_once_per_batch(make_vendor: MakeVendor):
    relay = LocalRelay()
    server = await start_relay(relay)
    server.close()
    await server.wait_closed()
    with capture_logs() as logs:
        vendor = make_vendor(relay)
        await vendor.send(batch("a@x.io", "b@x.io"))
        await vendor.send(batch("c@x.io"))
    warnings = [e for e in logs if e["event"] == "smtp.relay_unreachable"]
    assert len(warnings) == 2 and all(e["log_level"] == "warning" for e in warnings)
    assert warnings[0]["relay"] == f"127.0.0.1:{relay.port}"
    assert "cannot reach" in warnings[0]["error"] and warnings[0]["retried"] == 2


async def test_refused_recipients_are_logged_with_the_relays_words_never_the_password(
    login_relay: LocalRelay, make_vendor: MakeVendor
):
    login_relay.refuse = {"gone@x.io": "550 5.1.1 no such user", "full@x.io": "452 4.2.2 full"}
    with capture_logs() as logs:
        vendor = make_vendor(login_relay, username=USER, password=PASSWORD)
        await vendor.send(batch("a@x.io", "gone@x.io", "full@x.io"))
    refused = [e for e in logs if e["event"] == "smtp.recipient_refused"]
    assert [(e["message_id"], e["code"], e["text"]) for e in refused] == [
        ("c1.0001", 550, "5.1.1 no such user"),
        ("c1.0002", 452, "4.2.2 full"),
    ]
    assert all(e["log_level"] == "info" for e in refused)
    assert PASSWORD not in repr(logs)


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ({"host": "relay", "from": "nobody"}, "plugins.smtp.from = 'nobody': must be an address"),
        ({"host": "relay", "from": "a@b.io", "tls": "ssl"}, "plugins.smtp.tls = 'ssl'"),
        ({"host": "relay", "from": "a@b.io", "username": "u"}, "plugins.smtp.password"),
        ({"host": "relay", "from": "a@b.io", "rate": 0}, "plugins.smtp.rate = 0"),
        (  # the password in clear over the network
            {"host": "smtp.example.com", "from": "a@b.io", "tls": "none"}
            | {"username": "u", "password": "p"},
            "plugins.smtp.tls = 'none': \"none\" would send the password in clear",
        ),
    ],
)
def test_bad_settings_name_the_key(table: dict[str, Any], said: str):
    with pytest.raises(PluginSettingsError, match="^" + said.replace(".", r"\.")):
        crmd_vendors(PluginContext("smtp", table, None, "http://crmd", SECRET))


def test_a_local_relay_may_go_without_tls_and_a_remote_one_needs_a_public_url():
    local = {"host": "127.0.0.1", "from": "a@b.io", "tls": "none", "username": "u"}
    assert crmd_vendors(
        PluginContext("smtp", local | {"password": "p"}, None, "http://127.0.0.1:8080", SECRET)
    )
    remote = {"host": "smtp.example.com", "from": "a@b.io"}
    said = re.escape("server.public_url = 'http://127.0.0.1:8080'")
    with pytest.raises(PluginSettingsError, match="^" + said):
        crmd_vendors(PluginContext("smtp", remote, None, "http://127.0.0.1:8080", SECRET))
    for here in ("http://localhost:8080", "http://[::1]:8080", "http://0.0.0.0:8080"):
        with pytest.raises(PluginSettingsError, match=r"^server\.public_url"):
            crmd_vendors(PluginContext("smtp", remote, None, here, SECRET))
    assert crmd_vendors(PluginContext("smtp", remote, None, "https://crm.shop.example", SECRET))


def test_without_a_host_the_plugin_offers_nothing():
    assert crmd_vendors(PluginContext("smtp", {}, None, "http://crmd", SECRET)) == []
