"""Index declarations and the start-up step that ensures them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from pymongo import IndexModel
from pymongo.asynchronous.database import AsyncDatabase

log = structlog.get_logger(__name__)

IndexSpec = Mapping[str, Sequence[IndexModel]]

# collection -> its indexes. Each domain package adds its collections here as it lands.
INDEXES: IndexSpec = {}


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]], spec: IndexSpec = INDEXES) -> int:
    """Create every declared index that does not exist yet; returns how many were asked
    for. ``create_indexes`` leaves existing identical indexes alone, so this is safe on
    every start and from several processes at once."""
    total = 0
    for collection, models in spec.items():
        if models:
            names = await db[collection].create_indexes(list(models))
            total += len(names)
            log.debug("store.indexes", collection=collection, indexes=names)
    return total
