"""The vendors plugins provide, and calls into them that cannot take crmd down."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog
from redis.asyncio import Redis

from crmd.errors import Unprocessable
from crmd.plugins.manager import PluginError
from crmd.plugins.vendor import OutgoingMessage, Retry, SendResult, Vendor, VendorMisconfigured

log = structlog.get_logger(__name__)
SEND_BUDGET = 30.0


class Vendors:
    """By name; the default is ``[campaigns] default_vendor``, else the first loaded."""

    def __init__(self, vendors: Sequence[Vendor] = (), default: str = "") -> None:
        self.by_name = {v.name: v for v in vendors}
        if default and default not in self.by_name:
            known = ", ".join(self.by_name) or "none"
            raise PluginError(
                f"campaigns.default_vendor = {default!r}: no vendor of that name is loaded "
                f"(loaded: {known})"
            )
        self.default = default or (vendors[0].name if vendors else None)

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
    logged with the vendor's name. VendorMisconfigured alone is raised to the caller:
    retrying cannot help, the campaign must stop."""
    try:
        results = list(await asyncio.wait_for(vendor.send(messages), budget))
    except VendorMisconfigured:
        raise
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


# GCRA as a reservation: the key holds the theoretical arrival time (TAT) of the next
# message, in microseconds of the Redis server's clock (one clock for every process).
# Taking n moves it n intervals on; the caller waits until the TAT, less the burst
# allowance, has come. Reserving before waiting keeps the cluster's order fair and its
# average exact: every process's sends are spaced on the same line.
_TAKE = """
local now_s = redis.call('TIME')
local now = tonumber(now_s[1]) * 1000000 + tonumber(now_s[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + n * interval
local wait = next_tat - burst - now
if wait < 0 then wait = 0 end
local ttl = math.floor((next_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', ttl)
return wait
"""


class RateLimiter:
    """At most ``rate`` messages a second on average, across every crmd process that
    shares ``key`` in Redis, and never more than one second's worth (the burst) ahead
    of that pace. A batch larger than a second's worth is let through after the wait it
    costs, so large batches keep the rate too."""

    def __init__(self, redis: Redis, key: str, rate: float) -> None:
        self.redis = redis
        self.key = key
        self.rate = max(rate, 1.0)  # a vendor answering 0 must not stall every tenant
        self.interval_us = 1_000_000 / self.rate
        self.burst_us = 1_000_000.0  # a second's worth

    def batch_size(self, largest: int) -> int:
        """A batch of about a second's worth, so sending is smooth at low rates."""
        return max(1, min(largest, int(self.rate)))

    async def take(self, n: int) -> None:
        wait_us = await self.redis.eval(_TAKE, 1, self.key, self.interval_us, self.burst_us, n)
        if wait_us > 0:
            await asyncio.sleep(int(wait_us) / 1_000_000)


class RateLimits:
    """One limiter per vendor, shared by the cluster through Redis."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limiters: dict[str, RateLimiter] = {}

    def of(self, vendor: Vendor) -> RateLimiter:
        limiter = self.limiters.get(vendor.name)
        rate = vendor.rate_limit()
        if limiter is None or limiter.rate != max(rate, 1.0):
            key = f"{self.prefix}:rate:{vendor.name}"
            limiter = self.limiters[vendor.name] = RateLimiter(self.redis, key, rate)
        return limiter
