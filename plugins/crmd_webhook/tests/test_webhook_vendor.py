"""The webhook vendor against a local gateway: signed requests, the contract's bodies,
and what each answer of the gateway becomes; its receipts verified and read."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from crmd_webhook import Settings, WebhookVendor, crmd_vendors
from webhook_gateway import SECRET, Gateway

from crmd.plugins import (
    Accepted,
    Failed,
    OutgoingMessage,
    PluginContext,
    PluginSettingsError,
    Retry,
    VendorMisconfigured,
)

CRMD = "http://crmd.test"
MakeVendor = Callable[..., WebhookVendor]


@pytest.fixture
async def make_vendor(gateway: Gateway) -> AsyncIterator[MakeVendor]:
    async with aiohttp.ClientSession() as http:

        def make(**settings: Any) -> WebhookVendor:
            table = {"url": gateway.url, "secret": SECRET, **settings}
            [vendor] = crmd_vendors(PluginContext("webhook", table, http, CRMD, "unused"))
            return vendor

        yield make


MESSAGES = [
    OutgoingMessage("c1.01", "asha@x.io", "+919900000001", "Hi Asha"),
    OutgoingMessage("c1.02", "ravi@x.io", "", "Hi Ravi", subject="Sale", html="<b>Hi</b>"),
    OutgoingMessage("c1.03", "", "12", "Hi"),
]


async def test_a_batch_is_posted_signed_in_the_contracts_shape(
    gateway: Gateway, make_vendor: MakeVendor
):
    gateway.refuse = {"12": "not a mobile number"}
    results = await make_vendor().send(MESSAGES)
    assert gateway.refused_signatures == 0  # the gateway checked crmd's signature
    assert results == [
        Accepted("c1.01", "gw-c1.01"),
        Accepted("c1.02", "gw-c1.02"),
        Failed("c1.03", "not a mobile number"),
    ]
    [batch] = gateway.batches
    assert batch["receiptUrl"] == f"{CRMD}/api/v1/deliveryReceipt/webhook"
    assert batch["messages"] == [
        {"id": "c1.01", "to": "+919900000001", "phone": "+919900000001", "email": "asha@x.io"}
        | {"text": "Hi Asha"},
        {"id": "c1.02", "to": "ravi@x.io", "email": "ravi@x.io", "text": "Hi Ravi"}
        | {"subject": "Sale", "html": "<b>Hi</b>"},
        {"id": "c1.03", "to": "12", "phone": "12", "text": "Hi"},
    ]


async def test_the_same_batch_sent_again_carries_the_same_webhook_id(
    gateway: Gateway, make_vendor: MakeVendor
):
    vendor = make_vendor()
    await vendor.send(MESSAGES)
    await vendor.send(MESSAGES)
    await vendor.send(MESSAGES[:2])
    first, again, other = gateway.webhook_ids
    assert first == again != other


async def test_results_the_gateway_asks_to_retry_wait_as_it_says(
    gateway: Gateway, make_vendor: MakeVendor
):
    gateway.answer_text = json.dumps(
        {"results": [{"id": "c1.01", "status": "retry", "after": 30, "reason": "busy"}]}
    )
    assert await make_vendor().send(MESSAGES[:1]) == [Retry("c1.01", 30, "busy")]


async def test_5xx_and_429_retry_the_batch_after_the_gateways_wait(
    gateway: Gateway, make_vendor: MakeVendor
):
    gateway.answer_status, gateway.answer_headers = 503, {"Retry-After": "7"}
    assert await make_vendor().send(MESSAGES[:2]) == [
        Retry("c1.01", 7, "HTTP 503"),
        Retry("c1.02", 7, "HTTP 503"),
    ]
    gateway.answer_status, gateway.answer_headers = 429, {}
    [retry] = await make_vendor().send(MESSAGES[:1])
    assert isinstance(retry, Retry) and retry.reason == "HTTP 429" and retry.after_seconds > 0


async def test_a_gateway_that_does_not_answer_in_time_is_retried(
    gateway: Gateway, make_vendor: MakeVendor
):
    gateway.delay = 2.0
    [retry] = await make_vendor(timeout=0.3).send(MESSAGES[:1])
    assert isinstance(retry, Retry) and retry.reason.startswith("the gateway did not answer")


async def test_a_4xx_fails_the_batch_with_the_gateways_words(
    gateway: Gateway, make_vendor: MakeVendor
):
    gateway.answer_status, gateway.answer_text = 422, "messages[0].to:\n  not a number"
    assert await make_vendor().send(MESSAGES[:1]) == [
        Failed("c1.01", "HTTP 422: messages[0].to: not a number")
    ]


async def test_a_wrong_secret_is_misconfiguration_not_a_failed_message(
    gateway: Gateway, make_vendor: MakeVendor
):
    other = "whsec_" + base64.b64encode(b"not-the-gateways-secret-at-all").decode()
    with pytest.raises(VendorMisconfigured, match="HTTP 401: check url and secret"):
        await make_vendor(secret=other).send(MESSAGES[:1])
    assert gateway.refused_signatures == 1 and gateway.batches == []


async def test_a_token_in_the_url_is_never_shown(gateway: Gateway, make_vendor: MakeVendor):
    # The reason lands on the campaign, the check's detail on the console's Plugins page.
    other = "whsec_" + base64.b64encode(b"not-the-gateways-secret-at-all").decode()
    tokened = gateway.url.replace("http://", "http://user:pw@") + "?token=QUERYTOKEN123"
    vendor = make_vendor(url=tokened, secret=other)
    with pytest.raises(VendorMisconfigured) as stopped:
        await vendor.send(MESSAGES[:1])
    checked = await vendor.check()
    unreachable = make_vendor(url="http://127.0.0.1:9/hook?token=QUERYTOKEN123")
    [retry] = await unreachable.send(MESSAGES[:1])
    down = await unreachable.check()
    for said in (str(stopped.value), checked.detail, retry.reason, down.detail):
        assert "QUERYTOKEN123" not in said and "pw@" not in said, said
    assert "?…" in str(stopped.value)


def test_a_token_is_hidden_even_in_an_error_that_quotes_the_url_its_own_way():
    url = "https://user:pw-SECRET@gw.example/hook?token=QUERYTOKEN123"
    settings = Settings(url=url, secret=SECRET)
    assert settings.shown_url == "https://gw.example/hook?…"
    quoted = "TooManyRedirects: url=URL('https://user:pw-SECRET@gw.example:443/hook?token=QUERYTOKEN123')"
    said = settings.shown(quoted)
    assert "QUERYTOKEN123" not in said and "pw-SECRET" not in said, said


async def test_an_unreadable_answer_is_retried(gateway: Gateway, make_vendor: MakeVendor):
    gateway.answer_text = '{"results": "all fine"}'
    [retry] = await make_vendor().send(MESSAGES[:1])
    assert isinstance(retry, Retry) and "unreadable answer" in retry.reason


async def test_receipts_are_verified_before_they_are_read(
    make_vendor: MakeVendor, sign_receipt: Callable[..., dict[str, str]]
):
    vendor = make_vendor()
    body = json.dumps(
        {
            "receipts": [
                {"id": "c1.01", "status": "delivered", "timestamp": "2026-05-01T09:30:00Z"},
                {"vendorId": "gw-2", "status": "FAILED", "timestamp": "2026-05-01T09:31:00Z"}
                | {"eventId": "e-2", "reason": "handset off"},
            ]
        }
    ).encode()
    headers = sign_receipt(body, SECRET, webhook_id="msg_r1")
    vendor.verify_receipt(headers, body)
    first, second = vendor.parse_receipts(headers, body)
    assert (first.status, first.message_id, first.event_id) == ("DELIVERED", "c1.01", "msg_r1.0")
    assert (second.status, second.vendor_message_id, second.event_id) == ("FAILED", "gw-2", "e-2")
    assert second.reason == "handset off"
    with pytest.raises(ValueError, match="does not match"):
        vendor.verify_receipt(headers, body.replace(b"delivered", b"clicked"))
    with pytest.raises(ValueError, match="missing"):
        vendor.verify_receipt({}, body)
    with pytest.raises(ValueError, match="5-minute window"):
        vendor.verify_receipt(sign_receipt(body, SECRET, at=time.time() - 600), body)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"receipts": [{"status": "SENT", "timestamp": "2026-05-01T09:30:00Z"}]}', "names no"),
        (b'{"receipts": [{"id": "m", "status": "SENT"}]}', "unreadable receipt"),
        (b"not json", "unreadable receipt"),
    ],
)
def test_an_unreadable_receipt_is_refused_naming_the_problem(body: bytes, said: str):
    vendor = WebhookVendor(Settings(url="http://gw", secret=SECRET), None, "")  # no call is made
    with pytest.raises(ValueError, match=said):
        vendor.parse_receipts({"webhook-id": "msg_1"}, body)


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ({"url": "http://gw"}, "plugins.webhook.secret: must be whsec_<base64>"),
        (
            {"url": "http://gw", "secret": "whsec_c2hvcnQ="},
            "plugins.webhook.secret = '***': must be at",
        ),
        ({"url": "http://gw", "secret": "whsec_!!"}, "plugins.webhook.secret = '***': the part"),
        ({"url": "gw.example", "secret": SECRET}, "plugins.webhook.url = 'gw.example': must be"),
        (
            {"url": "http://gw/hook\n", "secret": SECRET},
            "plugins.webhook.url = 'http://gw/hook\\n': must be",
        ),
        ({"url": "http://gw", "secret": SECRET, "timeout": 60}, "plugins.webhook.timeout = 60"),
    ],
)
def test_bad_settings_name_the_key_and_never_show_the_secret(table: dict[str, Any], said: str):
    with pytest.raises(PluginSettingsError) as refused:
        crmd_vendors(PluginContext("webhook", table, None, CRMD, "x"))
    assert str(refused.value).startswith(said)
    assert "c2hvcnQ" not in str(refused.value)


def test_without_a_url_the_plugin_offers_nothing():
    assert crmd_vendors(PluginContext("webhook", {}, None, CRMD, "x")) == []
