"""Every write to a customer moves its slice's version on, so that a count kept per
slice is known to be stale: through the ingest path, against the real servers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from crmd.app import Crmd
from crmd.ingest.chunks import IngestChunk
from crmd.ingest.persist import persist_chunk
from crmd.ingest.rows import CustomerRow, OrderRow
from crmd.segments.slices import SLICE, CustomerVersions, numbers_of, slice_of

USER = str(ObjectId())
MAY = datetime(2024, 5, 1, tzinfo=UTC)


def customers(keys: range, seq: int, spend: float = 1.0) -> IngestChunk:
    rows = [
        CustomerRow(
            line=i + 2, customer_external_id=f"C{i}", name="N", email=f"c{i}@x.io", spend=spend
        )
        for i in keys
    ]
    return IngestChunk(
        upload=str(ObjectId()),
        user=USER,
        kind="customers",
        seq=seq,
        accepted_ms=seq,
        customers=rows,
    )


def test_slices_hold_consecutive_numbers():
    assert slice_of(1) == 0 and slice_of(SLICE) == 0 and slice_of(SLICE + 1) == 1
    assert numbers_of(1) == (SLICE + 1, 2 * SLICE + 1)


async def test_new_and_changed_customers_move_their_slices_on(system: Crmd, redis: Any):
    versions = CustomerVersions(redis, system.config.redis.stream_prefix)
    await persist_chunk(system.db, customers(range(0, SLICE + 10), 0), versions.changed)
    assert await versions.read(USER) == {0: 1, 1: 1}

    # The same rows again change nothing stored, and still say so (a replay after a crash).
    await persist_chunk(
        system.db, customers(range(SLICE + 5, SLICE + 10), 1, spend=2.0), versions.changed
    )
    assert await versions.read(USER) == {0: 1, 1: 2}

    orders = [OrderRow(line=2, amount=10.0, orderDate=MAY, customer_external_id="C3")]
    chunk = IngestChunk(
        upload=str(ObjectId()), user=USER, kind="orders", seq=0, accepted_ms=5, orders=orders
    )
    await persist_chunk(system.db, chunk, versions.changed)
    assert await versions.read(USER) == {0: 2, 1: 2}  # C3's order figures changed
