"""The stored documents read as Structs: each domain's writer stores the fields its
Struct names, and a read gives them back typed, the stored shape unchanged."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest
from bson import ObjectId

from crmd.app import Crmd
from crmd.store import documents
from crmd.store.tenant import TenantStore
from crmd.suppressions import entries


def store_for(system: Crmd) -> TenantStore:
    return TenantStore(system.db, str(ObjectId()))


def stored_names(kind: type[msgspec.Struct]) -> set[str]:
    return {f.encode_name for f in msgspec.structs.fields(kind)}


def test_a_document_with_a_wrong_field_type_is_refused_naming_the_field():
    with pytest.raises(msgspec.ValidationError, match=r"\$\.reason"):
        documents.decode({"_id": "x", "email": "a@b.io", "reason": 3}, documents.Suppression)


async def test_a_suppression_reads_back_as_stored(system: Crmd):
    store = store_for(system)
    wanted = entries.Entry("A@B.io", "asked", "unsubscribe", campaignId="c1")
    assert await entries.suppress(store, [wanted]) == (1, 0)
    raw = await system.db.suppressions.find_one({"userId": store.user_id})
    assert set(raw) == stored_names(documents.Suppression) | {"userId"}
    found = await entries.find(store, "a@b.io")
    assert isinstance(found, documents.Suppression)
    assert (found.id, found.email, found.source, found.campaignId) == (
        raw["_id"],
        "a@b.io",
        "unsubscribe",
        "c1",
    )
    assert isinstance(found.createdAt, datetime) and found.createdAt.tzinfo is not None
    page = await entries.newest_entries(store, None, 10)
    assert page.items == [found] and page.next_before is None
    assert await entries.suppressed_among(store, ["a@b.io", "z@b.io"]) == {
        "a@b.io": "on the suppression list: asked"
    }
