"""Customers to post events about, and the user who owns them."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.ingest.chunks import IngestChunk
from crmd.ingest.persist import persist_chunk
from crmd.ingest.rows import CustomerRow
from crmd.store.tenant import TenantStore


def customers_chunk(user: str, count: int, seq: int = 0) -> IngestChunk:
    rows = [
        CustomerRow(
            line=i + 2,
            customer_external_id=f"C{i}",
            name=f"Name {i}",
            email=f"c{i}@example.com",
            spend=float(i),
        )
        for i in range(count)
    ]
    return IngestChunk(str(ObjectId()), user, "customers", seq, 1_000 + seq, customers=rows)


async def user_id(system: Crmd, email: str = "ops@example.com") -> str:
    user = await system.db.users.find_one({"email": email})
    assert user is not None
    return str(user["_id"])


@pytest.fixture
async def owner(system: Crmd, auth: dict[str, str]) -> TenantStore:
    """The signed-in user's store, with customers C0..C9 (c0@example.com...)."""
    user = await user_id(system)
    await persist_chunk(system.db, customers_chunk(user, 10))
    return TenantStore(system.db, user)


async def customer_id(store: TenantStore, external_id: str) -> str:
    doc: Any = await store["customers"].find_one({"customer_external_id": external_id})
    assert doc is not None
    return str(doc["_id"])
