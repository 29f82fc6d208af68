"""Values as they may appear in an error or a log: secrets hidden, URL passwords cut."""

from __future__ import annotations

import re
from typing import Any

SECRET_KEYS = frozenset({"jwt_secret", "google_client_secret", "api_key", "secret", "password"})


def redact_value(key: str, value: Any) -> Any:
    """The value as it may appear in an error or a log: secrets hidden, URL passwords cut."""
    if key in SECRET_KEYS or key.endswith(("_secret", "_key", "password", "token")):
        return "***"
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def redact_url(url: str) -> str:
    """``mongodb://user:pw@host/db`` → ``mongodb://user:***@host/db``; a password in the
    query string goes too. Works on the text, not a parse, so that malformed URLs (an
    unescaped ``/`` or ``#`` in a password) are cut as well."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***" if "@" in url else url
    if "@" in rest:
        userinfo, host = rest.rsplit("@", 1)
        user = userinfo.split(":", 1)[0] if ":" in userinfo else userinfo
        rest = f"{user}:***@{host}" if ":" in userinfo else rest
    rest = _QUERY_SECRET.sub(r"\1=***", rest)
    return f"{scheme}://{rest}"


_QUERY_SECRET = re.compile(r"((?:password|pass|secret|token|key)[^=&]*)=[^&#]*", re.I)
