"""An erased address's hash: keyed by crmd's secret and the tenant, so the database alone
does not give the address back, and the same address in two tenants is two entries."""

from __future__ import annotations

from crmd.suppressions.entries import entry_id
from crmd.suppressions.erased import ErasedAddresses, erased_id
from crmd.suppressions.links import UnsubscribeLinks


def test_the_hash_depends_on_the_secret_the_tenant_and_the_address():
    one = ErasedAddresses.from_secret("s" * 32)
    assert one.digest("u1", "a@example.com") == one.digest("u1", "a@example.com")
    others = {
        one.digest("u2", "a@example.com"),
        one.digest("u1", "b@example.com"),
        ErasedAddresses.from_secret("t" * 32).digest("u1", "a@example.com"),
    }
    assert one.digest("u1", "a@example.com") not in others and len(others) == 3
    assert "a@example.com" not in one.digest("u1", "a@example.com")


def test_an_erased_entry_never_shares_an_id_with_a_plain_one():
    digest = ErasedAddresses.from_secret("s" * 32).digest("u1", "a@example.com")
    assert erased_id("u1", digest) != entry_id("u1", "a@example.com")
    assert len(erased_id("u1", digest)) == 24 and erased_id("u1", digest) != erased_id("u2", digest)


def test_the_links_of_one_secret_carry_the_same_key():
    links = UnsubscribeLinks.from_secret("s" * 32, "http://crmd.example")
    assert links.erased.key == ErasedAddresses.from_secret("s" * 32).key
