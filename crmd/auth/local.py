"""Whether a request comes from this machine, for what only a local caller may do (dev
login, in the API and the console)."""

from __future__ import annotations

from aiohttp import web

from crmd.config import is_loopback

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

PROXY_HEADERS = frozenset({"forwarded", "via", "forwarded-for", "x-forwarded"})

PROXY_WORDS = (
    "x-forwarded-", "real-ip", "client-ip", "clientip", "connecting-ip", "x-original-",
    "x-host", "x-proxy", "proxyuser", "x-envoy-", "cloudfront-viewer", "x-azure-",
    "x-cluster-client", "x-appengine-", "akamai-", "fastly-",
)  # fmt: skip
"""Headers that reverse proxies, load balancers and CDNs add, by name or by the words
their names share (X-Forwarded-*, X-Real-IP, True-Client-IP, CF-Connecting-IP...)."""


def through_a_proxy(request: web.Request) -> bool:
    """Any header a proxy, load balancer or CDN adds; and HTTP/1.0, which nginx's
    ``proxy_pass`` speaks by default (browsers and curl speak 1.1 or newer)."""
    if request.version < (1, 1):
        return True
    for name in request.headers:
        lowered = name.lower()
        if lowered in PROXY_HEADERS or any(word in lowered for word in PROXY_WORDS):
            return True
    return False


def from_this_machine(request: web.Request) -> bool:
    """A loopback peer that asked for a loopback name and came through no proxy: a
    proxy, an SSRF or a DNS-rebinding page on this host fails at least one of these.
    A proxy that adds no header and speaks HTTP/1.1 cannot be told from a local
    caller, which is why dev login also needs crmd to listen on loopback only and
    must never be turned on behind one (see docs/security.md, "Signing in")."""
    if through_a_proxy(request):
        return False
    host = request.url.host or ""
    return is_loopback(request.remote or "") and host.strip("[]").lower() in LOCAL_HOSTS
