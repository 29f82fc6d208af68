"""Writes that are safe to repeat."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


async def insert_new(insert: Awaitable[Any]) -> list[int]:
    """Await an unordered ``insert_many``: the documents that already exist (a duplicate
    ``_id`` or unique key: a redelivery, a second pass) are skipped. Returns their
    positions in the batch; any other write error is raised."""
    try:
        await insert
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return [e["index"] for e in errors]
    return []
