"""Standard Webhooks signatures: genuine and fresh, or refused."""

from __future__ import annotations

import base64

import pytest

from crmd.plugins.signature import SignatureError, signed_headers, verify

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = b'{"messageId":"m1","status":"DELIVERED"}'
NOW = 1_800_000_000


def test_a_genuine_fresh_callback_verifies():
    headers = signed_headers(SECRET, "evt_1", NOW, BODY)
    assert verify(SECRET, headers, BODY, now=NOW + 10) == "evt_1"


def test_a_rotated_secret_list_is_accepted():
    headers = signed_headers(SECRET, "evt_1", NOW, BODY)
    headers["webhook-signature"] = "v1,bm90IGl0 " + headers["webhook-signature"]
    assert verify(SECRET, headers, BODY, now=NOW) == "evt_1"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b: (h, b + b" "), "does not match"),
        (lambda h, b: ({**h, "webhook-id": "evt_2"}, b), "does not match"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
        (lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b), "does not match"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW - 10)}, b), "does not match"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "not a number"),
    ],
)
def test_forged_or_altered_callbacks_are_refused(change, reason):
    headers, body = change(signed_headers(SECRET, "evt_1", NOW, BODY), BODY)
    with pytest.raises(SignatureError, match=reason):
        verify(SECRET, headers, body, now=NOW)


def test_a_replay_outside_the_window_is_refused():
    headers = signed_headers(SECRET, "evt_1", NOW, BODY)
    with pytest.raises(SignatureError, match="5-minute window"):
        verify(SECRET, headers, BODY, now=NOW + 301)


def test_a_wrong_secret_is_refused():
    headers = signed_headers(SECRET, "evt_1", NOW, BODY)
    with pytest.raises(SignatureError):
        verify("whsec_" + base64.b64encode(b"x" * 32).decode(), headers, BODY, now=NOW)
