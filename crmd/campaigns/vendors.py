"""The vendors plugins provide, and calls into them that cannot take crmd down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog

from crmd.errors import Unprocessable
from crmd.plugins.vendor import OutgoingMessage, Retry, SendResult, Vendor

log = structlog.get_logger(__name__)
SEND_BUDGET = 30.0


class Vendors:
    """By name; the first loaded is the default."""

    def __init__(self, vendors: Sequence[Vendor] = ()) -> None:
        self.by_name = {v.name: v for v in vendors}
        self.default = vendors[0].name if vendors else None

    def get(self, name: str | None) -> Vendor:
        chosen = name or self.default
        if chosen is None or chosen not in self.by_name:
            known = ", ".join(self.by_name) or "none is loaded"
            raise Unprocessable(f"no vendor {chosen!r}; vendors: {known}", code="unknown_vendor")
        return self.by_name[chosen]

    async def close(self) -> None:
        for vendor in self.by_name.values():
            try:
                await asyncio.wait_for(vendor.close(), 10)
            except Exception:
                log.exception("vendor.close_failed", vendor=vendor.name)


async def guarded_send(
    vendor: Vendor, messages: Sequence[OutgoingMessage], budget: float = SEND_BUDGET
) -> list[SendResult]:
    """The vendor's answer per message. A vendor that raises, hangs past its budget, or
    forgets a message is isolated: those messages come back as Retry, and the error is
    logged with the vendor's name."""
    try:
        results = list(await asyncio.wait_for(vendor.send(messages), budget))
    except Exception as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        log.error(
            "vendor.send_failed", vendor=vendor.name, messages=len(messages), error=reason[:500]
        )
        return [Retry(m.message_id, 5.0, reason[:200]) for m in messages]
    answered = {r.message_id for r in results}
    missing = [m for m in messages if m.message_id not in answered]
    if missing:
        log.error("vendor.send_incomplete", vendor=vendor.name, missing=len(missing))
    return results + [Retry(m.message_id, 5.0, "no answer from the vendor") for m in missing]


class RateLimiter:
    """At most ``rate`` messages a second from this process, on average. A batch larger
    than a second's worth is let through after the wait it costs (the bucket goes into
    debt), so large batches keep the rate too."""

    def __init__(self, rate: float) -> None:
        self.rate = max(rate, 1.0)  # a vendor answering 0 must not stall every tenant
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def batch_size(self, largest: int) -> int:
        """A batch of about a second's worth, so sending is smooth at low rates."""
        return max(1, min(largest, int(self.rate)))

    async def take(self, n: int) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= n
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)
