"""Which URLs a webhook may post to: pure checks, each refusal naming its field.

Private addresses (loopback, RFC 1918, link-local, unique-local) are allowed unless
``[webhooks] allow_private = false``: a self-hosted crmd often posts to a service on
the same machine or network. With it false, a URL naming such an address or
``localhost`` is refused, and a host name is resolved again before each attempt so
that a name pointing at a private address is not posted to either."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

from crmd.errors import Unprocessable

MAX_URL = 2000
LOCAL_NAMES = ("localhost", "localhost.localdomain")


def refuse(message: str, field: str = "$.url") -> Unprocessable:
    return Unprocessable(message, code="invalid_url", details={"field": field})


def check_url(url: str, allow_private: bool, field: str = "$.url") -> str:
    """``url`` as it will be posted to, or an error naming ``field``."""
    url = url.strip()
    if not url:
        raise refuse("url is required", field)
    if len(url) > MAX_URL:
        raise refuse(f"url is longer than {MAX_URL} characters", field)
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise refuse("url may not contain spaces or control characters", field)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as exc:
        raise refuse(f"url is not a valid URL: {exc}", field) from None
    if parts.scheme not in ("http", "https"):
        raise refuse("url must start with http:// or https://", field)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise refuse("url may not carry a user name or password", field)
    if not parts.hostname:
        raise refuse("url names no host", field)
    if parts.fragment:
        raise refuse("url may not have a #fragment", field)
    if not allow_private and is_private_host(parts):
        raise refuse(
            "url names a private or local address, and [webhooks] allow_private is false",
            field,
        )
    return url


def is_private_host(parts: SplitResult) -> bool:
    host = (parts.hostname or "").rstrip(".").lower()
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return is_private_address(ipaddress.ip_address(host))
    except ValueError:
        return False  # a name: checked when it is resolved, before each attempt


def is_private_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast
