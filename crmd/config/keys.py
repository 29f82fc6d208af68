"""``[keys]``: the API keys workspaces make for their scripts and services."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct


class KeysConfig(Struct, forbid_unknown_fields=True, kw_only=True):
    """API keys (``crmd.workspaces.keys``): how fast one may call, how many a workspace
    may hold."""

    requests_per_minute: Annotated[int, Meta(ge=0, le=1_000_000)] = 600
    """Requests one key may make in any 60 seconds, counted in Redis across every crmd
    process; beyond, 429 ``rate_limited`` with ``Retry-After``. 0: no limit."""
    max_per_workspace: Annotated[int, Meta(ge=1, le=10_000)] = 100
    """Live keys (neither revoked nor expired) one workspace may hold."""
