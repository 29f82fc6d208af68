"""``[bounces]``: the listener for bounces and complaints mailed back to crmd, and the
rules that tie it to the smtp vendor's sender (``bounce_checks``)."""

from __future__ import annotations

import re
from typing import Annotated

from msgspec import Meta, Struct

from crmd.verp import DOT_ATOM, MAX_LOCAL_PART, TOKEN_CHARS, fits

Port = Annotated[int, Meta(ge=1, le=65535)]
DOMAIN = (
    r"((?=[A-Za-z0-9-]{1,63}\.)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
"""A host name of two labels or more."""


def is_domain(text: str) -> bool:
    return len(text) <= 253 and re.fullmatch(DOMAIN, text) is not None


class BouncesConfig(Struct, forbid_unknown_fields=True, kw_only=True):
    """The listener for bounces and complaints mailed back to crmd (the ``bounces``
    actor), and what they do to an address. Off unless ``host`` is set."""

    host: str = ""
    """The address the SMTP listener binds (``0.0.0.0`` for every interface); empty:
    off, and messages are sent with the smtp vendor's own envelope sender."""
    port: Port = 2525
    """Where it listens. Mail servers deliver to port 25 of the bounce domain's MX: point
    port 25 there (a redirect, or your MTA relaying the bounce domain to this port), or
    set 25 and give crmd CAP_NET_BIND_SERVICE."""
    domain: str = ""
    """The domain of every message's envelope sender, ``<local>+<token>@domain``, whose
    MX points at the listener; empty: the domain of ``[plugins.smtp] from``."""
    soft_window_days: Annotated[int, Meta(ge=1, le=365)] = 7
    soft_limit: Annotated[int, Meta(ge=1, le=100)] = 3
    """Soft bounces (4.x.x, or delayed) of an address within ``soft_window_days``, each
    for another message, that suppress it."""
    max_bytes: Annotated[int, Meta(ge=16 * 1024, le=64 * 1024 * 1024)] = 1024 * 1024
    """The largest mail the listener takes (answered 552 over it). A bounce carries the
    original message, or only its headers: 1 MiB is plenty."""

    def __post_init__(self) -> None:
        self.domain = self.domain.lower()
        if self.domain and not is_domain(self.domain):
            raise ValueError("domain: must be a domain name, such as bounces.shop.example")


def bounce_checks(
    bounces: BouncesConfig, local: str, domain: str
) -> list[tuple[tuple[str, ...], str]]:
    """With the listener on, the envelope sender (``local``@``domain``, from
    ``Config.bounce_sender``) must be one a token can be added to."""
    if not bounces.host:
        return []
    if not local:
        return [
            (
                ("bounces", "host"),
                "the bounces listener is for mail the smtp vendor sends: set "
                "[plugins.smtp] from (and host), or leave bounces.host empty",
            )
        ]
    if not DOT_ATOM.fullmatch(local) or not fits(local):
        return [
            (
                ("plugins", "smtp", "from"),
                f"with bounces on, its local part ({local!r}) is the start of every "
                f"envelope sender, <local>+<{TOKEN_CHARS}-character token>@<domain>: it must "
                f"be unquoted and at most {MAX_LOCAL_PART - TOKEN_CHARS - 1} characters",
            )
        ]
    if not is_domain(domain):
        return [
            (
                ("bounces", "domain"),
                f"the domain of [plugins.smtp] from, {domain!r}, is not one bounces can be "
                "mailed to: set bounces.domain (e.g. bounces.shop.example)",
            )
        ]
    return []
