"""Segments and previews over the audience counter: what the API, the console and the
clock share.

A saved segment keeps its size with the moment it was counted (``countedAt``). It is
counted when it is saved, within the counter's wait; a count that takes longer goes on
in the background, the segment is saved with no size yet (``audienceSize`` null), and
the clock stores it once it is done. The clock counts again the segments counted more
than ``STALE_AFTER`` ago, which costs only the slices that changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from bson import ObjectId
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from crmd.segments.audience import audience
from crmd.segments.counting import AudienceCounter
from crmd.segments.counts import Count
from crmd.segments.query import InvalidRule
from crmd.store.documents import Doc, Segment, decode
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_tallied

SAMPLE = 10
STALE_AFTER = timedelta(minutes=5)
REFRESH_BATCH = 20
REFRESH_WAIT = 0.2
"""How long the clock waits for each segment's count (the rest is counted meanwhile and
stored at a later tick)."""


def customer_sample(doc: Doc) -> Doc:
    doc["id"] = doc.pop("_id")
    for hidden in ("userId", "_v", "uploadId", "n"):
        doc.pop(hidden, None)
    return doc


class Previewed:
    """A rule's count and a sample of its customers, as the API and the console show
    them."""

    def __init__(self, count: Count, sample: list[Doc], ids: list[str] | None = None) -> None:
        self.count = count
        self.sample = sample
        self.ids = ids


async def preview(
    counter: AudienceCounter,
    store: TenantStore,
    rule: str,
    ids: int = 0,
    wait: float | None = None,
) -> Previewed:
    """The rule's count (within ``wait``, by default the counter's) and its newest
    customers. With ``ids``, the first ``ids`` ids too: those are found in one pass over
    every match, as the count and sample then are."""
    if ids:
        size, sample, found = await audience(store["customers"], rule, sample=SAMPLE, ids=ids)
        counted = Count(size, True, 1.0, datetime.now(UTC), [])
        return Previewed(counted, [customer_sample(d) for d in sample], [str(i) for i in found])
    counted = await counter.count(store, rule, wait)
    docs = {d["_id"]: d for d in await store["customers"].by_ids(counted.sample)}
    return Previewed(counted, [customer_sample(docs[i]) for i in counted.sample if i in docs])


async def segment_size(
    counter: AudienceCounter, store: TenantStore, rule: str, wait: float | None = None
) -> tuple[int | None, datetime | None]:
    """(the segment's size, the moment it stands for), or (None, None) while it is
    still being counted; InvalidRule (422) for a bad rule."""
    counted = await counter.count(store, rule, wait=wait)
    if not counted.complete:
        return None, None
    return counted.size, counted.moment


async def segment_by_id(store: TenantStore, id_text: str) -> Segment:
    """The user's segment whose id is ``id_text`` (404 when malformed, absent or not
    theirs)."""
    return decode(await store["segments"].get(id_text, "segment"), Segment)


async def save_segment(
    counter: AudienceCounter, store: TenantStore, name: str | None, rule: str
) -> Segment:
    """A new segment, counted (an invalid rule is refused before anything is written)."""
    size, counted = await segment_size(counter, store, rule)
    now = datetime.now(UTC)
    doc = {
        "_id": ObjectId(),
        "n": await store.reserve("segments", 1),
        "name": name or f"Segment {now:%Y-%m-%d %H:%M}",
        "rule": rule,
        "audienceSize": size,
        "countedAt": counted,
        "createdAt": now,
        "updatedAt": now,
    }
    await insert_tallied(store, "segments", [doc])
    return decode(doc, Segment)


async def change_segment(
    counter: AudienceCounter,
    store: TenantStore,
    segment_id: str,
    name: str | None,
    rule: str | None,
) -> Segment:
    """Rename a segment or change its rule (counted again; an invalid rule is refused
    before anything is written); the segment as it is now. NotFound (404) when it is
    not the user's."""
    doc = await segment_by_id(store, segment_id)
    changes: dict[str, Any] = {k: v for k, v in (("name", name), ("rule", rule)) if v}
    changes["audienceSize"], changes["countedAt"] = await segment_size(
        counter, store, rule or doc.rule
    )
    changes["updatedAt"] = datetime.now(UTC)
    await store["segments"].update_one({"_id": doc.id}, {"$set": changes})
    return msgspec.structs.replace(doc, **changes)


async def remove_segment(store: TenantStore, segment_id: str) -> Segment:
    """Delete a segment (the campaigns sent to it keep their copy of its rule); the
    segment that was. NotFound (404) when it is not the user's."""
    doc = await segment_by_id(store, segment_id)
    gone = await store["segments"].delete_one({"_id": doc.id})
    await store.add_to_tally("segments", -gone.deleted_count)
    return doc


async def refresh_stale_counts(
    counter: AudienceCounter, db: AsyncDatabase[Doc], now: datetime
) -> int:
    """Count the segments not counted yet, and again those counted longest ago (a few
    per call: the clock calls it every few seconds); returns how many were stored."""
    refreshed = 0
    for due in ({"countedAt": None}, {"countedAt": {"$lt": now - STALE_AFTER}}):
        found = db.segments.find(
            due,
            projection={"userId": 1, "rule": 1},
            sort=[("countedAt", ASCENDING)],
            limit=REFRESH_BATCH,
        )
        async for segment in found:
            store = TenantStore(db, segment["userId"])
            try:
                size, counted = await segment_size(counter, store, segment["rule"], REFRESH_WAIT)
            except InvalidRule:  # a rule that no longer parses (the language changed)
                size, counted = None, now
            if counted is None:
                continue  # still being counted: stored at a later tick
            await store["segments"].update_one(
                {"_id": segment["_id"]}, {"$set": {"audienceSize": size, "countedAt": counted}}
            )
            refreshed += 1
    return refreshed
