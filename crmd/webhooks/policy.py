"""When a failed delivery is tried again, and when it is given up: pure."""

from __future__ import annotations

from datetime import datetime, timedelta

BACKOFF_SECONDS = (5, 30, 120, 600, 3600, 3 * 3600, 6 * 3600)
"""The wait after the 1st, 2nd... failed attempt; with 8 attempts, a delivery is tried
over about ten hours before it is given up."""
RESPONSE_BYTES = 1024
"""How much of an endpoint's answer a delivery keeps."""


def retry_at(attempts: int, max_attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None: give up."""
    if attempts >= max_attempts:
        return None
    wait = BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]
    return now + timedelta(seconds=wait)


def delivered(status: int | None) -> bool:
    """A 2xx answer is a delivery; anything else (a redirect too) is a failure."""
    return status is not None and 200 <= status < 300


def cut(body: bytes) -> str:
    """An endpoint's answer as kept: its first bytes, as text."""
    return body[:RESPONSE_BYTES].decode("utf-8", "replace")
