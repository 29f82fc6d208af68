"""Records numbered in the order they arrived, pages as ranges of those numbers, and the
tallies the dashboard reads: against the real database."""

from __future__ import annotations

import asyncio
from typing import Any

from bson import ObjectId
from pymongo import AsyncMongoClient, monitoring

from crmd.app import Crmd
from crmd.ingest.chunks import IngestChunk
from crmd.ingest.persist import persist_chunk
from crmd.ingest.rows import CustomerRow
from crmd.store.documents import Doc
from crmd.store.numbering import (
    COUNTERS,
    add_to_tally,
    highest,
    number_unnumbered,
    recount,
    reserve,
    tally,
)
from crmd.store.tenant import TenantStore
from crmd.store.windows import newest

ALICE, BOB = str(ObjectId()), str(ObjectId())


def customers_chunk(user: str, keys: range, seq: int = 0, upload: str | None = None) -> IngestChunk:
    rows = [
        CustomerRow(
            line=i + 2,
            customer_external_id=f"C{i}",
            name=f"Name {i}",
            email=f"c{i}@example.com",
            spend=float(i),
        )
        for i in keys
    ]
    upload = upload or str(ObjectId())
    return IngestChunk(
        upload=upload, user=user, kind="customers", seq=seq, accepted_ms=1_000 + seq, customers=rows
    )


async def numbers(system: Crmd, user: str) -> dict[str, int]:
    return {
        d["customer_external_id"]: d["n"] async for d in system.db.customers.find({"userId": user})
    }


async def test_new_records_are_numbered_in_order_and_a_second_import_adds_no_numbers(
    system: Crmd,
):
    await persist_chunk(system.db, customers_chunk(ALICE, range(0, 300)))
    await persist_chunk(system.db, customers_chunk(ALICE, range(300, 500), seq=1))
    first = await numbers(system, ALICE)
    assert sorted(first.values()) == list(range(1, 501))
    assert first["C0"] < first["C299"] < first["C300"]
    # The same rows again (another upload, a redelivery): updated, not renumbered.
    await persist_chunk(system.db, customers_chunk(ALICE, range(0, 500), seq=2))
    assert await numbers(system, ALICE) == first
    assert await highest(system.db, ALICE, "customers") == 500
    assert (await tally(system.db, ALICE))["customers"] == 500
    # Bob's numbers are his own.
    await persist_chunk(system.db, customers_chunk(BOB, range(0, 3)))
    assert sorted((await numbers(system, BOB)).values()) == [1, 2, 3]


async def test_a_page_is_a_range_newest_first_and_the_next_page_goes_on_below(system: Crmd):
    await persist_chunk(system.db, customers_chunk(ALICE, range(0, 130)))
    customers = TenantStore(system.db, ALICE)["customers"]
    top = await highest(system.db, ALICE, "customers")
    seen: list[int] = []
    before = None
    for _ in range(5):
        page = await newest(customers, top, before=before, limit=50)
        seen += [d["n"] for d in page.items]
        assert page.scanned <= 2 * 64  # about a page, not the collection
        before = page.next_before
        if before is None:
            break
    assert seen == list(range(130, 0, -1))


async def test_a_gap_of_unused_numbers_is_stepped_over(system: Crmd):
    await persist_chunk(system.db, customers_chunk(ALICE, range(0, 10)))
    await reserve(system.db, ALICE, "customers", 50_000)  # a crash left these unused
    await persist_chunk(system.db, customers_chunk(ALICE, range(10, 15), seq=1))
    customers = TenantStore(system.db, ALICE)["customers"]
    page = await newest(customers, await highest(system.db, ALICE, "customers"), limit=12)
    assert [d["customer_external_id"] for d in page.items] == [
        *(f"C{i}" for i in range(14, 9, -1)),
        *(f"C{i}" for i in range(9, 2, -1)),
    ]


async def test_a_filtered_page_reads_at_most_its_budget_and_says_where_to_go_on(
    system: Crmd,
):
    await persist_chunk(system.db, customers_chunk(ALICE, range(0, 500)))
    customers = TenantStore(system.db, ALICE)["customers"]
    top = await highest(system.db, ALICE, "customers")
    page = await newest(customers, top, limit=10, keep=lambda d: d["spend"] < 5, max_scan=300)
    assert page.items == [] and page.scanned <= 300
    assert page.next_before is not None and page.next_before > 1
    rest = await newest(
        customers, top, before=page.next_before, limit=10, keep=lambda d: d["spend"] < 5
    )
    assert [d["customer_external_id"] for d in rest.items] == ["C4", "C3", "C2", "C1", "C0"]
    assert rest.next_before is None


async def test_by_ids_answers_only_the_users_own_documents(system: Crmd):
    await persist_chunk(system.db, customers_chunk(ALICE, range(0, 3)))
    await persist_chunk(system.db, customers_chunk(BOB, range(0, 3)))
    bobs = [d["_id"] async for d in system.db.customers.find({"userId": BOB})]
    alices = [d["_id"] async for d in system.db.customers.find({"userId": ALICE})]
    found = await TenantStore(system.db, ALICE)["customers"].by_ids(
        bobs + alices, {"spend": 1.0}, {"name": 1}
    )
    assert [d["name"] for d in found] == ["Name 1"]


async def test_records_from_before_numbering_are_numbered_once(system: Crmd):
    await system.db[COUNTERS].delete_many({})
    docs: list[dict[str, Any]] = [
        {"_id": f"old{i}", "userId": ALICE, "createdAt": None, "name": f"o{i}"} for i in range(5)
    ]
    await system.db.customers.insert_many(docs)
    assert await number_unnumbered(system.db) == 5
    assert sorted([d["n"] async for d in system.db.customers.find({"userId": ALICE})]) == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert await number_unnumbered(system.db) == 0  # done once


async def test_the_tally_is_recounted_exactly(system: Crmd):
    await persist_chunk(system.db, customers_chunk(ALICE, range(0, 7)))
    await system.db.customers.delete_one({"userId": ALICE})  # the tally did not see this
    assert (await tally(system.db, ALICE))["customers"] == 7
    assert (await recount(system.db, ALICE))["customers"] == 6
    assert (await tally(system.db, ALICE))["customers"] == 6


async def test_first_reservations_at_once_each_get_numbers_of_their_own(system: Crmd):
    """Ingest workers storing a new user's first chunks reserve at the same moment: one
    creates the counter, the others add to it, and no number is given twice (a gap is
    allowed: pages step over gaps). (Sixteen
    at once, for ten new users: without the retry, dozens of them failed.)"""
    for user in (f"u-race-{n}" for n in range(10)):
        firsts = await asyncio.gather(
            *(reserve(system.db, user, "customers", 10) for _ in range(16))
        )
        numbers = [n for first in firsts for n in range(first, first + 10)]
        assert len(set(numbers)) == 160  # a try that lost may leave a gap, never a repeat
        await asyncio.gather(*(add_to_tally(system.db, user, "orders", 3) for _ in range(16)))
        assert (await system.db.counters.find_one({"_id": f"{user}:tally"}))["orders"] == 48


class Inserts(monitoring.CommandListener):
    """Counts the ``insert`` commands sent to the customers collection."""

    def __init__(self) -> None:
        self.sent = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert" and event.command.get("insert") == "customers":
            self.sent += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


async def test_workers_storing_one_users_chunks_at_once_insert_each_chunk_once(system: Crmd):
    """Each chunk inserts its rows and adds them to the user's one tally document in one
    transaction; two at once conflict on that document. The tally is written first, so
    the one that loses finds out before it inserts anything and waits: no chunk's rows
    are inserted, thrown away and inserted again (what made two ingest workers slower
    than one), and the tally counts every row once."""
    await persist_chunk(system.db, customers_chunk(ALICE, range(0, 1)))  # the tally exists
    inserts = Inserts()
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        system.config.mongodb.url, event_listeners=[inserts], tz_aware=True
    )
    try:
        db = client[system.config.mongodb.database]
        chunks = [
            customers_chunk(ALICE, range(1 + k * 2000, 1 + (k + 1) * 2000), k) for k in range(3)
        ]
        await asyncio.gather(*(persist_chunk(db, chunk) for chunk in chunks))
    finally:
        await client.close()
    assert inserts.sent == 3
    assert (await tally(system.db, ALICE))["customers"] == 6001
    assert len(await numbers(system, ALICE)) == 6001


async def test_one_chunk_stored_twice_at_once_counts_its_rows_once(system: Crmd):
    """A redelivered chunk racing its first delivery (two workers): whichever inserts
    second finds the rows there (duplicate keys inside its transaction, its tally
    addition undone with them) and counts none of them again."""
    user = str(ObjectId())
    await persist_chunk(system.db, customers_chunk(user, range(0, 1)))  # the tally exists
    chunk = customers_chunk(user, range(1, 1501), seq=1)
    await asyncio.gather(*(persist_chunk(system.db, chunk) for _ in range(3)))
    stored = await numbers(system, user)
    assert len(stored) == 1501 and len(set(stored.values())) == 1501
    assert (await tally(system.db, user))["customers"] == 1501
