"""Signed unsubscribe links: ``<public_url>/u/<token>``, followed without signing in.

The token names the tenant, the campaign and the recipient (the customer, or for a test
send the address itself) and carries an HMAC-SHA256 of them, cut to 128 bits, under a
key derived from crmd's secret: whoever holds a link can unsubscribe its recipient and
nobody else, and nobody can make a link crmd did not. Links do not expire, since a
person may follow an old message's link years later; changing crmd's secret
(``[auth] jwt_secret``) invalidates every link sent before.

Pure: ``read`` takes a token and returns what it names, or raises a 4xx ``CrmdError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Annotated

import msgspec

from crmd.errors import BadRequest, Forbidden
from crmd.suppressions.erased import ErasedAddresses
from crmd.tracking.tokens import TrackingLinks

LINK_PATH = "/u/"
"""Where the links point, under ``[server] public_url`` (the console serves them)."""
MAC_BYTES = 16
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,400}\.[A-Za-z0-9_-]{22}$")
Id = Annotated[str, msgspec.Meta(max_length=300)]


class LinkTarget(msgspec.Struct, array_like=True, frozen=True, omit_defaults=True):
    """Whom a link unsubscribes, from whose list."""

    user: Id
    """The tenant: the suppression list the address joins."""
    campaign: Id
    """The campaign whose message carried the link."""
    customer: Id = ""
    """The customer it was sent to (their address is looked up when the link is used)."""
    email: Id = ""
    """The address itself, for a message to no customer (a test send)."""


class BadLink(BadRequest):
    code = "bad_unsubscribe_link"


class ForgedLink(Forbidden):
    code = "forged_unsubscribe_link"


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(LinkTarget).decode


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _incomplete() -> BadLink:
    return BadLink(
        "this unsubscribe link is incomplete or damaged: open the whole link from the "
        "message (some mail programs cut long links in two)"
    )


class UnsubscribeLinks:
    """Makes and reads the links of one crmd (one key, one public address). A message's
    other signed links, for clicks and opens, come with them (``tracking``), and so
    does the key that recognises erased customers' addresses (``erased``), since every
    path that plans or hands over a message holds these."""

    def __init__(
        self,
        key: bytes,
        base_url: str,
        tracking: TrackingLinks | None = None,
        erased: ErasedAddresses | None = None,
    ) -> None:
        self.key = key
        self.base_url = base_url.rstrip("/")
        self.tracking = tracking or TrackingLinks.from_secret(key.hex(), base_url)
        self.erased = erased or ErasedAddresses.from_secret(key.hex())

    @classmethod
    def from_secret(cls, secret: str, base_url: str, tracking_days: int = 365) -> UnsubscribeLinks:
        """The key is derived from crmd's secret for this one use, so a link's signature
        says nothing about any other token crmd signs."""
        key = hmac.new(secret.encode(), b"crmd unsubscribe links", hashlib.sha256).digest()
        tracking = TrackingLinks.from_secret(secret, base_url, tracking_days)
        return cls(key, base_url, tracking, ErasedAddresses.from_secret(secret))

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:MAC_BYTES]

    def token(self, target: LinkTarget) -> str:
        payload = _encode(target)
        return f"{_text(payload)}.{_text(self._mac(payload))}"

    def url(self, user: str, campaign: str, *, customer: str = "", email: str = "") -> str:
        """The link for one recipient: a customer, else an address."""
        target = LinkTarget(user, campaign, str(customer), "" if customer else email)
        return f"{self.base_url}{LINK_PATH}{self.token(target)}"

    def read(self, token: str) -> LinkTarget:
        """What a token names: BadLink (400) when it is not a token at all (cut short,
        mangled), ForgedLink (403) when its signature does not match what it says."""
        if not _TOKEN.fullmatch(token):
            raise _incomplete()
        body, _, mac = token.partition(".")
        try:
            payload, given = _bytes(body), _bytes(mac)
        except (binascii.Error, ValueError):
            raise _incomplete() from None
        if _text(payload) != body or _text(given) != mac:
            raise _incomplete()  # one token per link: spare bits of the last character set
        if not hmac.compare_digest(given, self._mac(payload)):
            raise ForgedLink(
                "this unsubscribe link was not made by this server, or was changed after it "
                "was sent: use the link exactly as it is in the message"
            )
        try:
            target = _decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise _incomplete() from None
        if not (target.user and target.campaign and (target.customer or target.email)):
            raise _incomplete()
        return target
