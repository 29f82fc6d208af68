"""Whether an address a browser names (``Origin``, ``Referer``) is this console's.

An origin is a scheme, a host and a port (RFC 6454); only http and https count. The
console's own origins are those of the address a request was sent to (its scheme and
``Host``) and of ``[server] public_url`` (where people reach crmd, e.g. through a proxy
that speaks TLS to the browser and plain http to crmd). Pure functions: the console's
middleware and error page hand them the addresses.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

Origin = tuple[str, str, int]
"""Scheme, host (lower case, IPv6 without brackets), port (the default one filled in)."""
DEFAULT_PORTS = {"http": 80, "https": 443}
_AMBIGUOUS = re.compile(r"[\x00-\x20\x7f\\@]")
"""Where browsers and Python's parser may read an address differently (a browser reads
``\\`` as ``/`` and drops tabs), or that carries credentials: such an address is
nobody's origin."""


def origin_of(url: str) -> Origin | None:
    """``url``'s origin when it is an absolute http or https address; None for any
    other scheme (``javascript:``, ``data:``), a relative address, a bad port, or an
    address with credentials, a backslash, a blank or a control character."""
    if _AMBIGUOUS.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port out of range, a broken IPv6 address
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port or DEFAULT_PORTS[scheme]


def own_origins(*addresses: str) -> set[Origin]:
    """The origins of ``addresses`` (the one a request was sent to, the public one)."""
    return {origin for address in addresses if (origin := origin_of(address)) is not None}


def is_own(url: str, own: Collection[Origin]) -> bool:
    """``url`` is on one of the ``own`` origins."""
    origin = origin_of(url)
    return origin is not None and origin in own
