"""Dead letters on the wire: what ``GET /api/v1/dead-letters`` answers.

Shared by the routes and the typed client (``crmd.client``), which imports it
without a database or Redis driver: keep it to msgspec and the other schema modules.
"""

from __future__ import annotations

import msgspec

from crmd.http.describe import Moment


class DeadLetterView(msgspec.Struct, rename="camel"):
    id: str
    stream: str
    """ingest or dispatch: receipts name no tenant, so no tenant sees theirs here."""
    source_id: str
    dead_at: Moment
    deliveries: int
    error: str
    kind: str
    summary: str


class DeadLetterList(msgspec.Struct):
    items: list[DeadLetterView]
    complete: bool
    """False when the newest dead letters were too many to look through all of them for
    yours: older ones may exist beyond them."""
