"""Unsubscribe links: what they name is signed; a changed or cut link is refused."""

from __future__ import annotations

import base64

import msgspec
import pytest

from crmd.suppressions.links import (
    LINK_PATH,
    BadLink,
    ForgedLink,
    LinkTarget,
    UnsubscribeLinks,
)

LINKS = UnsubscribeLinks.from_secret(
    "a-secret-of-at-least-thirty-two-bytes!!", "https://crm.example"
)
USER, CAMPAIGN, CUSTOMER = "65f0" + "0" * 20, "65f1" + "1" * 20, "c" * 24


def token_of(url: str) -> str:
    assert url.startswith("https://crm.example" + LINK_PATH)
    return url.removeprefix("https://crm.example" + LINK_PATH)


def test_a_link_reads_back_as_the_recipient_it_was_made_for():
    url = LINKS.url(USER, CAMPAIGN, customer=CUSTOMER)
    assert LINKS.read(token_of(url)) == LinkTarget(USER, CAMPAIGN, CUSTOMER, "")
    by_address = LINKS.url(USER, CAMPAIGN, email="tester@example.com")
    assert LINKS.read(token_of(by_address)) == LinkTarget(USER, CAMPAIGN, "", "tester@example.com")
    # A customer's link names the customer only: their address is not in the link.
    assert LINKS.url(USER, CAMPAIGN, customer=CUSTOMER, email="x@example.com") == url
    assert len(url) < 200


def test_a_changed_payload_is_refused_as_forged():
    token = token_of(LINKS.url(USER, CAMPAIGN, customer=CUSTOMER))
    body, _, mac = token.partition(".")
    other = base64.urlsafe_b64encode(
        msgspec.msgpack.encode(LinkTarget("65f2" + "2" * 20, CAMPAIGN, CUSTOMER))
    )
    for forged in (
        f"{other.decode().rstrip('=')}.{mac}",  # another tenant, the old signature
        f"{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{mac}",  # one character
        f"{body}.{'A' * 22}",  # a made-up signature
    ):
        with pytest.raises(ForgedLink) as refused:
            LINKS.read(forged)
        assert refused.value.status == 403
        assert "not made by this server" in refused.value.message


def test_another_servers_link_is_refused():
    theirs = UnsubscribeLinks.from_secret("another-secret-of-thirty-two-bytes!!!!", "https://x")
    token = theirs.token(LinkTarget(USER, CAMPAIGN, CUSTOMER))
    with pytest.raises(ForgedLink):
        LINKS.read(token)


@pytest.mark.parametrize(
    "damaged",
    [
        "",
        "abc",
        "no-dot-here-at-all-just-text",
        "abcdefgh.short",
        "abc!defgh." + "A" * 22,
        "a" * 401 + "." + "A" * 22,
        "abcdefghi." + "A" * 22,  # a length base64 cannot have
    ],
)
def test_a_cut_or_mangled_link_is_a_bad_request(damaged: str):
    with pytest.raises(BadLink) as refused:
        LINKS.read(damaged)
    assert refused.value.status == 400
    assert refused.value.code == "bad_unsubscribe_link"
    assert "incomplete or damaged" in refused.value.message


def test_a_token_has_one_spelling():
    token = token_of(LINKS.url(USER, CAMPAIGN, customer=CUSTOMER))
    body, _, mac = token.partition(".")
    # The last character of a base64 text may carry unused bits: set, it decodes to the
    # same bytes, but it is not the link crmd sent.
    for spelling in (f"{body}.{mac[:-1]}{chr(ord(mac[-1]) + 1)}",):
        with pytest.raises(BadLink):
            LINKS.read(spelling)


def test_a_signed_token_that_names_nobody_is_refused():
    for empty in (LinkTarget(USER, CAMPAIGN), LinkTarget("", CAMPAIGN, CUSTOMER)):
        with pytest.raises(BadLink):
            LINKS.read(LINKS.token(empty))
