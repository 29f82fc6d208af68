"""A lease in Redis: one holder at a time for work that must run in one process only
(the clock), with a fencing token that grows with every new holder.

The lease expires unless its holder renews it, so when the holder dies another process
takes it within ``seconds``. A holder that stalled past its lease and wakes up still
believes it holds it: the fencing token is what tells it otherwise. The holder records
its token in MongoDB before its work (the clock: at each tick's first task), and a
record of a larger token there means a newer holder exists (``fence``).
"""

from __future__ import annotations

import secrets
import socket
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

# KEYS: the lease, the token counter (one hash slot: {name}). ARGV: holder, ttl ms.
# Returns the holder's token while it holds the lease, else nil.
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(redis.call('GET', KEYS[2]))
end
if current then return nil end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('INCR', KEYS[2])
"""
_ADVANCE = """
local n = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < n then redis.call('SET', KEYS[1], n) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, redis: Redis, name: str, seconds: float, holder: str = "") -> None:
        self.redis = redis
        self.name = name
        self.keys = (f"{{{name}}}:lease", f"{{{name}}}:token")
        self.ttl_ms = int(seconds * 1000)
        self.holder = holder or f"{socket.gethostname()}:{secrets.token_hex(6)}"
        """Unique per holder: a restarted process is a new holder, with a new token."""

    async def hold(self) -> int | None:
        """Take the lease or renew it: this holder's fencing token while it holds the
        lease, None while another does."""
        token = await self.redis.eval(_HOLD, 2, *self.keys, self.holder, self.ttl_ms)
        return None if token is None else int(token)

    async def advance(self, newest: int) -> None:
        """Make the next token larger than ``newest``: after Redis lost its data, new
        tokens would start again at 1 and be fenced out for ever."""
        await self.redis.eval(_ADVANCE, 1, self.keys[1], newest)

    async def release(self) -> None:
        """Give the lease up (on a clean stop), so another takes it at once."""
        await self.redis.eval(_RELEASE, 1, self.keys[0], self.holder)


async def fence(db: AsyncDatabase[dict[str, Any]], name: str, token: int, now: datetime) -> int:
    """Record ``token`` as the newest holder's of ``name``. Returns the newest token
    recorded: ``token`` itself, or a larger one when a newer holder exists (this
    holder's lease is gone, whatever it believes)."""
    try:
        await db.fences.update_one(
            {"_id": name, "token": {"$lte": token}},
            {"$set": {"token": token, "at": now}},
            upsert=True,
        )
    except DuplicateKeyError:  # the document exists, with a larger token
        found = await db.fences.find_one({"_id": name})
        return int(found["token"]) if found else token
    return token
