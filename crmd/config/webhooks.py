"""``[webhooks]``: crmd's own events posted to the tenants' URLs."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct


class WebhooksConfig(Struct, forbid_unknown_fields=True, kw_only=True):
    """Webhooks out (``crmd.webhooks``): where they may post, how long an answer may
    take, how often a delivery is tried."""

    allow_private: bool = True
    """Whether a webhook may post to a private or local address (localhost, 10.x,
    192.168.x...): a self-hosted crmd often posts to a service beside it. Set it false
    where tenants are not trusted with the network crmd sits in."""
    timeout_seconds: Annotated[float, Meta(gt=0, le=60)] = 10.0
    """How long an endpoint has to answer an attempt; no answer in time is a failure."""
    max_attempts: Annotated[int, Meta(ge=1, le=20)] = 8
    """Attempts before a delivery is given up (failed); the waits between them grow
    from 5 seconds to 6 hours."""
    max_per_tenant: Annotated[int, Meta(ge=1, le=1000)] = 20
    """Webhooks one tenant may have."""
    batch: Annotated[int, Meta(ge=1, le=1000)] = 50
    """Deliveries one clock tick attempts at most (10 at once)."""
    disable_after_days: Annotated[float, Meta(ge=0, le=365)] = 5.0
    """A webhook whose every attempt has failed for this long is turned off when one of
    its deliveries is given up (0: never turned off)."""
