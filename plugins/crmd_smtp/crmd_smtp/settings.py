"""``[plugins.smtp]``, decoded by crmd from the file and the environment alike."""

from __future__ import annotations

from email.utils import formataddr, parseaddr
from typing import Annotated, Literal

import msgspec

from crmd.plugins import is_loopback

TLS_PORTS = {"starttls": 587, "implicit": 465, "none": 25}


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The relay and how to reach it. Four settings are enough for most relays:
    ``host``, ``from``, ``username`` and ``password`` (STARTTLS on port 587)."""

    host: str = ""
    """The relay's name or address; empty turns the plugin off."""
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    """0: the usual port of the ``tls`` mode (587 starttls, 465 implicit, 25 none)."""
    sender: str = msgspec.field(name="from", default="")
    """``"Shop <news@shop.example>"`` or a bare address: the From of every message."""
    username: str = ""
    password: str = ""
    """Write it ``$env:NAME`` or ``$file:/path`` (``$file:${CREDENTIALS_DIRECTORY}/smtp``
    under systemd's ``LoadCredential=``), never inline."""
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    rate: Annotated[float, msgspec.Meta(gt=0, le=10_000)] = 10.0
    """Messages per second, for every crmd process together."""
    timeout: Annotated[float, msgspec.Meta(gt=0, le=60)] = 10.0
    """Seconds one SMTP command may take."""
    ca_file: str = ""
    """A PEM file of the certificates to trust, for a relay with a private CA."""
    helo: str = ""
    """The name crmd gives in EHLO; empty: the domain of ``from``."""
    provider: Literal["", "ses", "sendgrid", "postmark", "mailgun"] = ""
    """The provider whose relay this is, when its event webhook reports to crmd
    (``plugins/crmd_providers``): each message then also carries crmd's message id where
    that provider echoes it (a SendGrid unique arg, Postmark metadata, a Mailgun
    variable). Every message carries ``X-Crmd-Message-Id`` whatever this says."""

    def __post_init__(self) -> None:
        if not self.host:
            return
        address = parseaddr(self.sender)[1]
        if "@" not in address or any(c in self.sender for c in "\r\n"):
            raise ValueError('from: must be an address, e.g. "Shop <news@shop.example>"')
        if bool(self.username) != bool(self.password):
            raise ValueError("password: username and password go together")
        if self.tls == "none" and self.password and not is_loopback(self.host):
            raise ValueError(
                'tls: "none" would send the password in clear to a relay on another '
                'machine; use "starttls" or "implicit"'
            )

    @property
    def address(self) -> str:
        """The envelope sender (MAIL FROM)."""
        return parseaddr(self.sender)[1]

    @property
    def from_header(self) -> str:
        name, address = parseaddr(self.sender)
        return formataddr((name, address)) if name else address

    @property
    def domain(self) -> str:
        """The from address's domain: the right side of every Message-ID crmd sends."""
        return self.address.rpartition("@")[2].lower()

    @property
    def relay_port(self) -> int:
        return self.port or TLS_PORTS[self.tls]
