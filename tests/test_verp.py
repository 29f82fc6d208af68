"""VERP envelope senders: every message's own, read back to its send key, and nothing
else read back to any."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmd.messages import message_id, send_key
from crmd.verp import MAX_LOCAL_PART, TOKEN_CHARS, ReturnPaths, fits
from tests.conftest import examples

PATHS = ReturnPaths.from_secret(
    "a-test-secret-of-32-bytes-or-more!!", "news", "bounces.shop.example"
)
rounds = st.one_of(st.just(0), st.integers(min_value=1, max_value=999_999))
log_ids = st.one_of(
    st.binary(min_size=20, max_size=20).map(lambda b: f"{b[:12].hex()}.{b[12:].hex()}"),
    st.binary(min_size=12, max_size=12).map(bytes.hex),  # a legacy id: 24 hex characters
)


def send_keys() -> st.SearchStrategy[str]:
    return st.builds(lambda log_id, n: send_key({"_id": log_id, "round": n}), log_ids, rounds)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=examples(500))
@given(send_keys())
def test_an_address_reads_back_to_its_send_key(key: str):
    token = PATHS.token(key)
    assert token == token.lower() and token.isalnum()
    address = f"news+{token}@bounces.shop.example"
    assert PATHS.read(address) == key
    assert PATHS.read(f"<{address.upper()}>") == key  # a mail system may change its case
    if len(f"news+{token}") <= MAX_LOCAL_PART:
        assert PATHS.address(key) == address
    else:
        assert PATHS.address(key) == ""  # sent with the vendor's own sender instead


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=examples(500))
@given(send_keys(), st.data())
def test_any_changed_character_is_refused(key: str, data: st.DataObject):
    token = PATHS.token(key)
    at = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    other = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz234567r0189"))
    changed = token[:at] + other + token[at + 1 :]
    if changed != token:
        assert PATHS.read(f"news+{changed}@bounces.shop.example") is None


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=examples(200))
@given(send_keys(), st.integers(min_value=1, max_value=5))
def test_a_cut_or_lengthened_token_is_refused(key: str, cut: int):
    token = PATHS.token(key)
    for bad in (token[:-cut], token[cut:], token + "a" * cut, "a" * cut + token):
        assert PATHS.read(f"news+{bad}@bounces.shop.example") is None


def test_a_token_of_another_secret_or_domain_names_nothing():
    key = message_id("0123456789abcdef01234567", "K1")
    address = PATHS.address(key)
    other = ReturnPaths.from_secret("another-secret-of-32-bytes-or-more!", "news", PATHS.domain)
    assert other.read(address) is None
    assert PATHS.read(address.replace("bounces.shop.example", "shop.example")) is None
    assert PATHS.read(address) == key


def test_a_round_zero_address_is_the_documented_length():
    key = message_id("0123456789abcdef01234567", "K1")
    local = PATHS.address(key).partition("@")[0]
    assert len(local) == len("news+") + TOKEN_CHARS == 47
    assert fits("a" * (MAX_LOCAL_PART - 1 - TOKEN_CHARS)) and not fits("a" * 22)


@pytest.mark.parametrize("key", ["test-0123456789abcdef01234567", "", "nonsense", "0" * 23])
def test_no_address_for_what_is_no_log_id(key: str):
    assert PATHS.address(key) == ""
