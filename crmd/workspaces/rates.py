"""How fast one API key may call: at most ``requests_per_minute`` in any 60 seconds.

The count lives in Redis, one sorted set per key (its members the moments of the
requests it let through), so every crmd process sharing that Redis counts the same
requests: the limit holds for the cluster, not per process. The moments are the Redis
server's clock, one clock for every process. A refused request is not counted, so a
client that waits the ``Retry-After`` it was given is let in."""

from __future__ import annotations

import math

from redis.asyncio import Redis

from crmd.errors import TooManyRequests

WINDOW_US = 60_000_000
"""The window, in microseconds."""

# Forget what left the window, count what is in it; refuse (answering the milliseconds
# until its oldest request leaves) or note this one. A request's member is its moment
# and the count before it: two requests in one microsecond still make two members.
_TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.floor((tonumber(oldest[2]) + window - now) / 1000) + 1
end
redis.call('ZADD', KEYS[1], now, string.format('%d:%d', now, count))
redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1000)
return 0
"""


class KeyRates:
    """``take(key_id)`` before a key's request is served; 0 per minute: no limit."""

    def __init__(self, redis: Redis, prefix: str, per_minute: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.per_minute = per_minute

    def redis_key(self, key_id: str) -> str:
        return f"{self.prefix}:keyrate:{key_id}"

    async def take(self, key_id: str) -> None:
        """Count one request of the key, or refuse it: 429 ``rate_limited``, with
        ``Retry-After`` the seconds until the window has room again."""
        if self.per_minute <= 0:
            return
        key = self.redis_key(key_id)
        wait_ms = int(await self.redis.eval(_TAKE, 1, key, WINDOW_US, self.per_minute))
        if wait_ms > 0:
            seconds = max(1, math.ceil(wait_ms / 1000))
            raise TooManyRequests(
                f"this API key may make {self.per_minute} requests a minute; "
                f"try again in {seconds} s",
                retry_after=seconds,
                details={"limit": self.per_minute, "window": "60s"},
            )
