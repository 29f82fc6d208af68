"""``[plugins.webhook]``, decoded by crmd from the file and the environment alike."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import msgspec

from crmd.plugins import SECRET_PREFIX, SignatureError, secret_bytes

_URL = re.compile(r"https?://[^\s/]+(/\S*)?")
"""Matched whole (``fullmatch``): ``$`` would also match before a final line break."""
MIN_SECRET_BYTES = 24


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: str = ""
    """The gateway's endpoint; empty turns the plugin off."""
    secret: str = ""
    """``whsec_<base64 of 24 to 64 random bytes>``: signs what crmd sends and what the
    gateway posts back. Write it ``$env:NAME`` or ``$file:/path``, never inline."""
    rate: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 50.0
    """Messages per second, for every crmd process together."""
    timeout: Annotated[float, msgspec.Meta(gt=0, le=25)] = 15.0
    """Seconds the gateway has to answer a batch (crmd gives a batch 30 s in all)."""

    @property
    def shown_url(self) -> str:
        """The url as it may be shown (a console page, a campaign's reason, a log line):
        without a user, password or query string, which may hold a gateway's token."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))

    def shown(self, text: str) -> str:
        """``text`` with the url in it replaced by ``shown_url``, and its query and user
        part wherever they still appear (an error may quote the url as aiohttp wrote it)."""
        text = text.replace(self.url, self.shown_url)
        parts = urlsplit(self.url)
        userinfo = parts.netloc.rpartition("@")[0]
        for secret in (parts.query, userinfo, parts.password or ""):
            if secret:
                text = text.replace(secret, "…")
        return text

    def __post_init__(self) -> None:
        if not self.url:
            return
        if not _URL.fullmatch(self.url):
            raise ValueError("url: must be an http:// or https:// URL")
        if not self.secret.startswith(SECRET_PREFIX):
            raise ValueError(
                f"secret: must be {SECRET_PREFIX}<base64>, as Standard Webhooks has it"
            )
        try:
            size = len(secret_bytes(self.secret))
        except SignatureError:
            raise ValueError(f"secret: the part after {SECRET_PREFIX} is not base64") from None
        if size < MIN_SECRET_BYTES:
            raise ValueError(f"secret: must be at least {MIN_SECRET_BYTES} random bytes")
