"""A form between a POST and the page after it (Post/Redirect/Get).

A form that comes back to its page (a preview, suggestions, a mistake, a question
before sending) is kept here for an hour under a random key, and the POST answers a
redirect to the page with that key in its address: reloading that page asks for it
again and posts nothing. A key is its user's alone (it is part of the Redis key), and
holds only what that user typed and what crmd answered them."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import msgspec
from redis.asyncio import Redis

KEPT_SECONDS = 3600
PREFIX = "crmd:console:form"


def _key(user: str, token: str) -> str:
    return f"{PREFIX}:{user}:{token}"


async def keep(redis: Redis, user: str, state: dict[str, Any]) -> str:
    """Keep ``state`` (JSON-able) for the user; the token that finds it again."""
    token = secrets.token_urlsafe(12)
    await redis.set(_key(user, token), msgspec.json.encode(state), ex=KEPT_SECONDS)
    return token


async def kept(redis: Redis, user: str, token: str) -> dict[str, Any] | None:
    """The state kept under ``token`` for this user; None when it is gone or not theirs."""
    if not token or len(token) > 40 or not token.replace("-", "").replace("_", "").isalnum():
        return None
    raw = await redis.get(_key(user, token))
    if raw is None:
        return None
    state: dict[str, Any] = msgspec.json.decode(raw)
    return state


def confirmation(values: dict[str, str], said: str) -> str:
    """What "Send now" asked about: the form's values and the audience it named. The
    answer carries it back; a form changed since is asked about again."""
    text = msgspec.json.encode({"values": values, "said": said})
    return hashlib.sha256(text).hexdigest()[:32]


async def first_use(redis: Redis, user: str, confirmed: str) -> bool:
    """True the first time this confirmation is answered (a double click, or a reload
    of the answer, sends once)."""
    used = await redis.set(f"{PREFIX}:sent:{user}:{confirmed}", 1, nx=True, ex=KEPT_SECONDS)
    return bool(used)


async def take(redis: Redis, user: str, token: str) -> dict[str, Any] | None:
    """``kept``, and gone after: what may be shown once only (a webhook's secret)."""
    state = await kept(redis, user, token)
    if state is not None:
        await redis.delete(_key(user, token))
    return state
