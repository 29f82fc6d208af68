"""Writes that are safe to repeat."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError

from crmd.store.numbering import add_to_tally
from crmd.store.tenant import TenantStore

DUPLICATE_KEY = 11000
RACES = 3


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


async def insert_tallied(store: TenantStore, kind: str, docs: Sequence[dict[str, Any]]) -> set[int]:
    """Insert new records of ``kind`` and add them to the user's tally in one
    transaction: a crash leaves both or neither, so a chunk written again after a crash
    counts its records exactly once (its records are then found, not inserted). Records
    that exist already (a duplicate ``_id`` or unique key: another writer inserted the
    same record meanwhile) are left out and the rest inserted again; returns their
    positions.

    This is why crmd needs a replica set (one node is enough): MongoDB runs
    transactions on replica sets and sharded clusters only."""
    collection = store[kind]
    raced: set[int] = set()
    for _ in range(RACES):
        left = [i for i in range(len(docs)) if i not in raced]
        if not left:
            return raced

        async def insert(session: AsyncClientSession, left: list[int] = left) -> None:
            chosen = [docs[i] for i in left]
            top = max((int(d.get("n", 0)) for d in chosen), default=0)
            # The tally first: writers of one user's chunks conflict on that one
            # document, and the one that loses finds out before it inserts anything
            # (after, it threw its insert away: two importers ran at half the speed of
            # one). The cost: a writer killed here leaves the tally held until the
            # database gives up its transaction (60 s), and the user's other new
            # records wait as long.
            await add_to_tally(store.db, store.user_id, kind, len(left), session, top)
            await collection.insert_many(chosen, session=session)

        try:
            async with store.db.client.start_session() as session:
                await session.with_transaction(insert, write_concern=store.write_concern)
            return raced
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            # A transaction stops at its first error: the others are looked up.
            raced |= {left[e["index"]] for e in errors}
        found = await collection.by_ids([docs[i]["_id"] for i in left], projection={"_id": 1})
        there = {d["_id"] for d in found}
        raced |= {i for i in left if docs[i]["_id"] in there}
    raise RuntimeError(f"new {kind} kept being inserted by another writer at the same time")
