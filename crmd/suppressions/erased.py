"""Erased customers' addresses: on the suppression list as a keyed hash, never as text.

When a customer is erased (``crmd.customers.erasure``) their address leaves every
document, but crmd must still never message it: a later import of the same address
stores the customer again (the tenant's own data), and planning and hand-over must
then skip them. So the list keeps an entry whose only trace of the address is
HMAC-SHA256(key, tenant, address), the key derived from crmd's secret for this one
use: a stolen database does not give the address back (a guess cannot be checked
without the key), and the same address in two tenants hashes differently.

The check costs one HMAC per recipient, asked in the same read of the list as the
plain entries (``entries.suppressed_among``). Changing crmd's secret (``[auth]
jwt_secret``) forgets every erased address: that is said in the manual.
"""

from __future__ import annotations

import hashlib
import hmac

SOURCE = "erasure"
"""The ``source`` of an erased customer's entry."""
REASON = "the customer's data was erased at their request"
SHOWN = 12
"""Hex characters of the hash the list shows (enough to tell entries apart)."""


class ErasedAddresses:
    """The key that hashes erased addresses, one per crmd (derived from its secret)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    @classmethod
    def from_secret(cls, secret: str) -> ErasedAddresses:
        key = hmac.new(secret.encode(), b"crmd erased addresses", hashlib.sha256).digest()
        return cls(key)

    def digest(self, user: str, email: str) -> str:
        """The hash an erased ``email`` (normalised) is kept as on ``user``'s list."""
        return hmac.new(self.key, f"{user}\x00{email}".encode(), hashlib.sha256).hexdigest()


def erased_id(user: str, digest: str) -> str:
    """The ``_id`` of the erased address ``digest`` on ``user``'s list: 24 hex
    characters, apart from any plain entry's (``entries.entry_id``)."""
    return hashlib.sha256(f"{user}\x00erased\x00{digest}".encode()).hexdigest()[:24]
