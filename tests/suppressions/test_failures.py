"""Which vendor failures suppress the address: only those that say it is dead."""

from __future__ import annotations

import pytest

from crmd.suppressions.entries import Entry
from crmd.suppressions.failures import dead_in, hard_failure


@pytest.mark.parametrize(
    "reason",
    [
        "550 5.1.1 <ana@example.com>: Recipient address rejected: User unknown",
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
        "553 5.1.3 The recipient address <x> is not a valid RFC-5321 address",
        "554 5.2.1 The email account that you tried to reach is disabled",
        "550 Requested action not taken: mailbox unavailable",
        "551 User not local",
        "SMTP 550: no such user here",
        "no such user",
        "the mailbox does not exist",
        "550 unknown user",
        "550 mailbox not found",
        "550 5.4.1 Recipient address rejected: Access denied",  # Microsoft 365's unknown user
    ],
)
def test_a_dead_address_is_a_hard_failure(reason: str):
    assert hard_failure(reason)


@pytest.mark.parametrize(
    "reason",
    [
        "550 5.7.1 Message rejected as spam",
        "554 5.7.1 Service unavailable; client host blocked using Spamhaus",
        "552 5.2.2 The email account that you tried to reach is over quota",
        "452 4.2.2 Mailbox full",
        "421 4.7.0 Try again later",
        "450 4.1.1 <x>: Recipient address rejected: User unknown in local table",
        "550 Message refused by policy",
        # Relays refuse every recipient so when they are misconfigured: no address is dead.
        "550 relay not permitted",
        "553 sorry, relaying denied from your location",
        "553 sorry, relaying denied",
        "550 5.7.1 Unable to relay",
        "550 5.4.1 Relay Access Denied",  # Exchange's relay refusal: no address is named
        "554 Recipient address rejected: Access denied",  # a Postfix recipient restriction
        "550 Message content rejected",
        "550 Requested action not taken: message refused",
        "553 5.1.8 Sender address rejected: Domain not found",
        "554 Transaction failed",
        "recipient unreachable",  # the dummy vendor's simulated failure
        "no e-mail address",
        "gave up after 5 attempts: timed out",
        "",
    ],
)
def test_anything_else_is_not(reason: str):
    assert not hard_failure(reason)


def test_a_whole_batch_refused_alike_suppresses_nobody():
    refused = [Entry(f"c{i}@example.com", "550 5.1.1 user unknown", "failure") for i in range(5)]
    assert dead_in(5, refused) == []  # the relay's doing, not five dead mailboxes
    assert dead_in(6, refused) == refused  # one of six was taken: these five are dead
    assert dead_in(2, refused[:2]) == refused[:2]  # too few to tell
    mixed = [*refused[:4], Entry("x@example.com", "550 5.1.1 no such user x", "failure")]
    assert dead_in(5, mixed) == mixed


def test_a_batch_refused_alike_but_for_the_address_suppresses_nobody():
    """A relay that takes the shop's domain for its own names each address it refuses."""
    refused = [
        Entry(e, f"550 5.1.1 <{e}>: Recipient address rejected: User unknown", "failure")
        for e in (f"c{i}@example.com" for i in range(4))
    ]
    assert dead_in(4, refused) == []
    assert dead_in(5, refused) == refused
