"""Signed invitation links: ``<public_url>/invitations/<token>``, opened in the console.

The token is the invitation's id and an HMAC-SHA256 of it, cut to 128 bits, under a key
derived from crmd's secret for this one use: nobody can make a link crmd did not, and the
database alone (stolen, or read by a curious admin) does not hold the links, since they
are never stored. What a link may do (its address, its role, its expiry, whether it was
used or withdrawn) is in the invitation's document, read when the link is used.

Pure: ``read`` takes a token and returns the invitation id it names, or raises a 4xx
``CrmdError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from bson import ObjectId

from crmd.errors import BadRequest, Forbidden

LINK_PATH = "/invitations/"
"""Where the links point, under ``[server] public_url`` (the console serves them)."""
MAC_BYTES = 16
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}$")


class BadInvitationLink(BadRequest):
    code = "bad_invitation_link"


class ForgedInvitationLink(Forbidden):
    code = "forged_invitation_link"


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _bytes(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class InvitationLinks:
    """Makes and reads the invitation links of one crmd (one key, one public address)."""

    def __init__(self, key: bytes, base_url: str) -> None:
        self.key = key
        self.base_url = base_url.rstrip("/")

    @classmethod
    def from_secret(cls, secret: str, base_url: str) -> InvitationLinks:
        key = hmac.new(secret.encode(), b"crmd invitation links", hashlib.sha256).digest()
        return cls(key, base_url)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:MAC_BYTES]

    def token(self, invitation: str) -> str:
        payload = ObjectId(invitation).binary
        return f"{_text(payload)}.{_text(self._mac(payload))}"

    def url(self, invitation: str) -> str:
        return f"{self.base_url}{LINK_PATH}{self.token(invitation)}"

    def read(self, token: str) -> str:
        """The invitation id a token names: BadInvitationLink (400) when it is not a
        token at all (cut short by a mail program, mangled), ForgedInvitationLink (403)
        when its signature does not match."""
        incomplete = BadInvitationLink(
            "this invitation link is incomplete or damaged: open the whole link as it was "
            "given to you"
        )
        if not _TOKEN.fullmatch(token):
            raise incomplete
        body, _, mac = token.partition(".")
        try:
            payload, given = _bytes(body), _bytes(mac)
        except (binascii.Error, ValueError):
            raise incomplete from None
        if _text(payload) != body or _text(given) != mac or len(payload) != 12:
            raise incomplete  # one token per link: no spare bits set
        if not hmac.compare_digest(given, self._mac(payload)):
            raise ForgedInvitationLink(
                "this invitation link was not made by this server, or was changed: use the "
                "link exactly as it was given to you"
            )
        return str(ObjectId(payload))
