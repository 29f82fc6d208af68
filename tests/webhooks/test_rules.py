"""The pure parts: the signature against the Standard Webhooks libraries' own example,
fresh secrets, the back-off schedule and the URL rules."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from crmd.errors import Unprocessable
from crmd.webhooks import policy, signing
from crmd.webhooks.urls import check_url


def test_the_signature_matches_the_standard_webhooks_example():
    # The example the Standard Webhooks reference libraries test themselves with.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    made = signing.signature(
        secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert made == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_new_secret_is_whsec_and_base64_of_enough_random_bytes():
    made = {signing.new_secret() for _ in range(20)}
    assert len(made) == 20
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24


def test_failures_back_off_and_are_given_up_after_the_last_attempt():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    waits = [policy.retry_at(n, 8, now) for n in range(1, 9)]
    assert [w - now for w in waits[:7] if w] == [
        timedelta(seconds=s) for s in (5, 30, 120, 600, 3600, 3 * 3600, 6 * 3600)
    ]
    assert waits[7] is None
    assert policy.retry_at(3, 3, now) is None
    assert policy.retry_at(12, 20, now) == now + timedelta(hours=6)  # the last wait stays
    assert [policy.delivered(s) for s in (200, 204, 299, 301, 404, 500, None)] == [
        True, True, True, False, False, False, False,
    ]  # fmt: skip
    assert policy.cut(b"x" * 5000) == "x" * 1024
    assert policy.cut("é".encode() * 600).startswith("é")


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/a?b=c", "http://127.0.0.1:8000/x", "http://[::1]/", "http://h"],
)
def test_good_urls_pass(url: str):
    assert check_url(f"  {url} ", allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:3000/",
        "http://api.localhost/",
        "http://10.0.0.8/",
        "http://172.16.3.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
    ],
)
def test_private_and_local_addresses_are_refused_when_not_allowed(url: str):
    with pytest.raises(Unprocessable) as refused:
        check_url(url, allow_private=False, field="url")
    assert refused.value.details == {"field": "url"}
    assert check_url(url, allow_private=True) == url


def test_a_public_address_passes_with_private_ones_off():
    assert check_url("https://93.184.215.14/x", allow_private=False) == "https://93.184.215.14/x"
    assert check_url("https://hooks.example.com/", allow_private=False)
