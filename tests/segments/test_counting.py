"""Audience counts kept per slice of customers: right, shared, and costing only what
changed. Against the real database and Redis, customers stored by the ingest path."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from redis.asyncio import Redis

import crmd.segments.counting as counting
import crmd.segments.counts as counts
import crmd.segments.slices as slices
from crmd.app import Crmd
from crmd.ingest.chunks import IngestChunk
from crmd.ingest.persist import persist_chunk
from crmd.ingest.rows import CustomerRow
from crmd.segments.counting import AudienceCounter
from crmd.segments.counts import Rule
from crmd.segments.query import InvalidRule, rule_filter
from crmd.segments.slices import CustomerVersions
from crmd.store.numbering import reserve
from crmd.store.tenant import TenantStore
from tests.counted import commands, read

SLICE = 200
"""The tests' slices: a fifth of crmd's, so that each test writes a fifth of the
customers for as many slices (the counting does not depend on their size)."""


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slices, "SLICE", SLICE)
    monkeypatch.setattr(counting, "SLICE", SLICE)


CITIES = ("Delhi", "Pune", "Goa")
NOW = datetime.now(UTC)
RULES = (
    "spend > 500",
    "spend > 200 AND visits < 3",
    'location in ("Delhi", "Pune") OR visits >= 8',
    "lastActive < 30d",
    'NOT name contains "ra"',
)


def rows(keys: range, seed: int = 1, spend: float | None = None) -> list[CustomerRow]:
    rng = random.Random(seed)
    return [
        CustomerRow(
            line=i + 2,
            customer_external_id=f"C{i}",
            name=rng.choice(("Asha Rao", "Ravi Shah", "Om Sen")),
            email=f"c{i}@example.com",
            location=rng.choice(CITIES),
            spend=spend if spend is not None else float(rng.randrange(1000)),
            visits=rng.randrange(10),
            lastActive=NOW - timedelta(days=rng.randrange(60)),
        )
        for i in keys
    ]


class Customers:
    """One user's customers, written as the ingest actor writes them."""

    def __init__(self, system: Crmd, redis: Any) -> None:
        self.system = system
        self.user = str(ObjectId())
        self.store = TenantStore(system.db, self.user)
        self.versions = CustomerVersions(redis, system.config.redis.stream_prefix)
        self.seq = 0

    async def write(self, batch: list[CustomerRow]) -> None:
        for start in range(0, len(batch), 500):
            self.seq += 1
            chunk = IngestChunk(
                upload=str(ObjectId()),
                user=self.user,
                kind="customers",
                seq=self.seq,
                accepted_ms=self.seq,
                customers=batch[start : start + 500],
            )
            await persist_chunk(self.system.db, chunk, self.versions.changed)

    async def truth(self, rule: str) -> int:
        query = {**rule_filter(rule, Rule(rule).moment), "userId": self.user}
        return await self.system.db.customers.count_documents(query)


def read_by_counting(system: Crmd) -> float:
    return read(system, "counts", "customers")


@pytest.fixture
async def customers(system: Crmd, redis: Any) -> Customers:
    made = Customers(system, redis)
    await made.write(rows(range(2 * SLICE + 300)))
    return made


async def test_each_rule_counts_what_the_database_counts(system: Crmd, customers: Customers):
    for rule in RULES:
        counted = await system.counter.count_all(customers.store, rule)
        assert counted.complete and counted.progress == 1.0
        assert counted.size == await customers.truth(rule), rule
        assert len(counted.sample) == min(10, counted.size)


async def test_a_rule_counted_again_reads_no_customer_and_two_spellings_are_one_rule(
    system: Crmd, customers: Customers
):
    first = await system.counter.count_all(customers.store, "spend > 500 AND visits < 3")
    read = read_by_counting(system)
    again = await system.counter.count(customers.store, "spend>500 and visits<3", wait=0)
    assert again.complete and again.size == first.size
    assert read_by_counting(system) == read


async def test_a_rule_never_counted_is_read_once_slice_by_slice(system: Crmd, customers: Customers):
    read = read_by_counting(system)
    counted = await system.counter.count_all(customers.store, "spend > 990")
    assert counted.size == await customers.truth("spend > 990")
    assert len(counted.sample) == min(10, counted.size)
    assert read_by_counting(system) - read == 2 * SLICE + 300  # each customer once


async def test_without_redis_a_count_is_the_databases_own(system: Crmd, customers: Customers):
    """Redis gone: a campaign can still be created, with its whole audience counted."""
    gone = Redis(unix_socket_path=str(customers.store.user_id) + ".nowhere.sock")
    counter = AudienceCounter(system.db, gone, system.config.redis.stream_prefix, system.metrics)
    rule = 'location in ("Delhi", "Pune") OR visits >= 8'
    counted = await counter.count_all(customers.store, rule)
    assert counted.complete and counted.size == await customers.truth(rule)
    newest = system.db.customers.find(
        {**rule_filter(rule), "userId": customers.user}, sort=[("n", -1)], limit=10
    )
    assert counted.sample == [str(doc["_id"]) async for doc in newest]
    await counter.close()
    await gone.aclose()


async def test_new_customers_are_counted_alone_and_a_changed_one_recounts_its_slice(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(counts, "LAG", 0.0)
    rule = "spend > 500"
    await system.counter.count_all(customers.store, rule)
    read = read_by_counting(system)

    await customers.write(rows(range(2 * SLICE + 300, 2 * SLICE + 400), seed=2))
    counted = await system.counter.count_all(customers.store, rule)
    assert counted.size == await customers.truth(rule)
    assert read_by_counting(system) - read <= SLICE  # the newest slice, not the 2,400

    read = read_by_counting(system)
    await customers.write(rows(range(5, 6), seed=3, spend=10_000.0))  # in the first slice
    counted = await system.counter.count_all(customers.store, rule)
    assert counted.size == await customers.truth(rule)
    assert read_by_counting(system) - read == SLICE


async def test_a_slice_counted_within_the_lag_stands_while_writes_go_on(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(counts, "LAG", 0.5)
    rule = "visits >= 5"
    await system.counter.count_all(customers.store, rule)
    read = read_by_counting(system)
    await customers.write(rows(range(0, 10), seed=4))  # slice 0 moves on
    quick = await system.counter.count(customers.store, rule, wait=0)
    assert read_by_counting(system) == read  # not read again yet
    # ... and not said to be complete: the rows written since may be missing.
    assert not quick.complete and quick.progress < 1
    await asyncio.sleep(0.6)
    counted = await system.counter.count_all(customers.store, rule)
    assert counted.complete and counted.size == await customers.truth(rule)
    assert read_by_counting(system) - read == SLICE


async def test_a_count_not_done_in_its_wait_says_how_far_it_got_and_goes_on(
    system: Crmd, customers: Customers
):
    rule = 'name contains "sha"'
    early = await system.counter.count(customers.store, rule, wait=0)
    assert not early.complete and early.progress < 1.0
    async with asyncio.timeout(30):
        while not (later := await system.counter.count(customers.store, rule, wait=0.2)).complete:
            assert later.progress >= early.progress
    assert later.size == await customers.truth(rule)


async def test_a_count_is_one_users_alone(system: Crmd, customers: Customers, redis: Any):
    other = Customers(system, redis)
    await other.write(rows(range(0, 40), seed=9, spend=900.0))
    assert (await system.counter.count_all(other.store, "spend > 500")).size == 40
    mine = await system.counter.count_all(customers.store, "spend > 500")
    assert mine.size == await customers.truth("spend > 500")
    assert not set(mine.sample) & {c["_id"] async for c in other.store["customers"].find({})}


async def test_a_bad_rule_is_refused_with_its_column(system: Crmd, customers: Customers):
    with pytest.raises(InvalidRule) as refused:
        await system.counter.count(customers.store, "spend > > 3")
    assert refused.value.column == 9


async def test_an_age_is_measured_from_a_moment_that_moves_in_steps():
    rule = Rule("lastActive < 30d")
    assert rule.timed and rule.moment.timestamp() % counts.MOMENT_STEP == 0
    assert Rule("lastActive < 30d").key == rule.key
    assert not Rule("spend > 1").timed


async def test_counting_stops_cleanly_and_says_why_when_the_database_goes(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    counter = AudienceCounter(
        system.db, system.redis, system.config.redis.stream_prefix, system.metrics
    )

    async def gone(*args: Any, **kwargs: Any) -> None:
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(counter, "_count_run", gone)
    with pytest.raises(ConnectionResetError):
        await counter.count_all(customers.store, "visits > 1")
    await counter.close()


async def test_no_count_is_trusted_past_its_age_whatever_its_version(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    # Long enough that no slice ages while a count runs on a busy machine.
    monkeypatch.setattr(counts, "TRUSTED_FOR", 1.5)
    await system.counter.count_all(customers.store, "visits < 4")
    read = read_by_counting(system)
    await asyncio.sleep(1.6)
    again = await system.counter.count_all(customers.store, "visits < 4")
    assert again.size == await customers.truth("visits < 4")
    assert read_by_counting(system) - read == 2 * SLICE + 300  # every slice read again


@pytest.mark.parametrize("slots", [1, 2])
async def test_only_count_slots_runs_read_the_database_at_once(
    system: Crmd, redis: Any, monkeypatch: pytest.MonkeyPatch, slots: int
):
    users = [Customers(system, redis) for _ in range(2)]
    for made in users:
        await made.write(rows(range(3 * SLICE)))
    counter = AudienceCounter(
        system.db, system.redis, system.config.redis.stream_prefix, system.metrics, slots=slots
    )
    reading = {"now": 0, "most": 0}
    real_find = counting.TenantStore.__getitem__

    class Watched:
        def __init__(self, cursor: Any) -> None:
            self.cursor = cursor

        async def __aiter__(self) -> Any:
            reading["now"] += 1
            reading["most"] = max(reading["most"], reading["now"])
            try:
                async for doc in self.cursor:
                    yield doc
                    await asyncio.sleep(0)  # let another run in, if it may
            finally:
                reading["now"] -= 1

    def watched(store: Any, name: str) -> Any:
        collection = real_find(store, name)
        find = collection.find
        collection.find = lambda *a, **k: Watched(find(*a, **k))  # type: ignore[method-assign]
        return collection

    monkeypatch.setattr(counting.TenantStore, "__getitem__", watched)
    rule = 'name contains "o"'  # not an index's: read slice by slice
    await asyncio.gather(*(counter.count_all(made.store, rule) for made in users))
    await counter.close()
    assert reading["most"] == slots


async def test_a_slice_read_for_one_rule_is_counted_for_every_rule_being_counted(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(counts, "LAG", 0.0)
    rules = ("visits > 6", 'location = "Goa"')
    await asyncio.gather(*(system.counter.count_all(customers.store, r) for r in rules))
    read = read_by_counting(system)
    await customers.write(rows(range(7, 8), seed=5))  # slice 0 moves on
    await asyncio.gather(*(system.counter.count_all(customers.store, r) for r in rules))
    assert read_by_counting(system) - read == SLICE  # one read, for both
    for rule in rules:
        assert (await system.counter.count(customers.store, rule)).size == await customers.truth(
            rule
        )


async def test_counting_rests_as_long_as_each_run_of_slices_took(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """Its share of the database: a first count of many slices does not read them back
    to back."""
    counter = system.counter
    runs: list[tuple[float, float]] = []
    count_run = counter._count_run

    async def timed(*args: Any) -> None:
        began = asyncio.get_running_loop().time()
        await count_run(*args)
        runs.append((began, asyncio.get_running_loop().time()))

    monkeypatch.setattr(counter, "_count_run", timed)
    counted = await counter.count_all(customers.store, "visits > 4")
    assert counted.size == await customers.truth("visits > 4")
    assert len(runs) >= 2  # three slices: one run of one, then one of two
    for (began, ended), (next_began, _) in itertools.pairwise(runs):
        assert next_began - ended >= (ended - began) * 0.9


async def test_first_counts_asked_at_once_are_taken_one_at_a_time_with_a_rest_between(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """Eleven rules typed at the start of an import were counted back to back, and every
    page waited the 20 s that took."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 2)
    counter = system.counter
    wholes: list[tuple[float, float, int]] = []
    count_whole = counter._count_whole

    async def timed(store: Any, job: Any, beside: list[Any]) -> None:
        began = asyncio.get_running_loop().time()
        await count_whole(store, job, beside)
        wholes.append((began, asyncio.get_running_loop().time(), job.rule.key))

    monkeypatch.setattr(counter, "_count_whole", timed)
    rules = ("visits > 4", "spend > 300", 'location = "Goa"')
    counted = await asyncio.gather(*(counter.count_all(customers.store, r) for r in rules))
    assert [c.size for c in counted] == [await customers.truth(r) for r in rules]
    assert sorted(key for _, _, key in wholes) == sorted(Rule(r).key for r in rules)
    for (began, ended, _), (next_began, _, _) in itertools.pairwise(wholes):
        assert next_began - ended >= (ended - began) * 0.9


async def test_a_rule_counted_before_does_not_wait_for_the_first_counts_of_others(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """A campaign's audience (a rule counted before, its new slices owed) is brought up
    to date at the first turn, not after every rule typed for the first time."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 3)
    monkeypatch.setattr(counts, "LAG", 0.0)
    counter = system.counter
    await counter.count_all(customers.store, "visits > 4")
    await customers.write(rows(range(0, 20), seed=8))  # slice 0, under any first count's read
    began: list[float] = []
    count_whole = counter._count_whole

    async def timed(store: Any, job: Any, beside: list[Any]) -> None:
        began.append(asyncio.get_running_loop().time())
        await count_whole(store, job, beside)

    monkeypatch.setattr(counter, "_count_whole", timed)

    async def warm() -> float:
        counted = await counter.count_all(customers.store, "visits > 4")
        assert counted.size == await customers.truth("visits > 4")
        return asyncio.get_running_loop().time()

    cold = ("spend > 300", 'location = "Goa"', "spend > 700")
    done, *_ = await asyncio.gather(warm(), *(counter.count_all(customers.store, r) for r in cold))
    assert len(began) == 3 and done < began[1]


async def test_a_count_waited_for_ends_though_other_rules_pushed_its_rule_out(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """The probe's hang: a campaign's count was dropped from the tracked rules by
    forty previews, and nothing ever woke it."""
    monkeypatch.setattr(counting, "MAX_RULES", 2)
    monkeypatch.setattr(counting, "WAKE", 0.1)
    rules = [f"visits >= {v}" for v in range(6)]
    counted = await asyncio.wait_for(
        asyncio.gather(*(system.counter.count_all(customers.store, r) for r in rules)), 60
    )
    for rule, count in zip(rules, counted, strict=True):
        assert count.size == await customers.truth(rule), rule


async def test_a_first_count_over_many_slices_is_the_databases_and_reads_only_its_sample(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """A first count over many slices is the database's own count of the rule, not a
    read of every customer; its sample is still the newest matches, read from the
    newest slices (or, for a rare rule, asked of the database)."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 2)
    monkeypatch.setattr(counting, "MAX_RUN", 2)  # the sample reads 2 slices at most
    await customers.write(rows(range(2 * SLICE + 300, 6 * SLICE + 50), seed=3))  # 7 slices
    for rule in ("spend > 900", 'location in ("Delhi", "Pune") OR visits >= 8', "spend > 997"):
        read = read_by_counting(system)
        counted = await system.counter.count_all(customers.store, rule)
        truth = await customers.truth(rule)
        assert counted.complete and counted.size == truth, rule
        newest = customers.store["customers"].find(
            rule_filter(rule, Rule(rule).moment), projection={"_id": 1}, sort=[("n", -1)], limit=10
        )
        assert counted.sample == [str(doc["_id"]) async for doc in newest], rule
        # The count's one document (slices 0-4), the newest two slices read beside it
        # (250 customers), then those under them for the count's own sample: one
        # slice, then one more (MAX_RUN); for a rare rule, the database's newest.
        sampled = read_by_counting(system) - read
        if rule == "spend > 997":
            under = {"$and": [rule_filter(rule, Rule(rule).moment), {"n": {"$lt": 1001}}]}
            older = await customers.store["customers"].count_documents(under)
            assert sampled == 1 + 250 + 400 + min(older, 10)
        elif rule.startswith("location"):  # two in three customers: one slice
            assert sampled == 1 + 250 + 200
        else:
            assert sampled in (1 + 250 + 200, 1 + 250 + 400)
        assert (await system.counter.count(customers.store, rule, wait=0)).size == truth
        assert read_by_counting(system) - read == sampled  # counted again: nothing read


async def test_after_a_first_count_an_import_has_only_its_new_slices_read(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """The database's first count covers the slices under the newest: an import that
    appends customers moves only the newest slice and the ones after it, so the count
    stands and crmd reads those alone, with no second pass over every customer (the
    load run's 20 s without answers, as eleven rules were counted twice over)."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 3)  # the 4 slices unknown; not 2 new
    monkeypatch.setattr(counts, "LAG", 0.0)
    rule = "visits > 5"
    first = await system.counter.count_all(customers.store, rule)
    assert first.size == await customers.truth(rule)
    # 700 customers: slices 0-1 counted at once, slices 2-3 (401-700) read beside them.
    await customers.write(rows(range(2 * SLICE + 300, 4 * SLICE + 50), seed=4))  # to 850
    read, asked = read_by_counting(system), commands(system).get("aggregate", 0)
    again = await system.counter.count_all(customers.store, rule)
    assert commands(system).get("aggregate", 0) == asked  # the database counted nothing
    assert again.complete and again.size == await customers.truth(rule) > first.size
    assert again.sample[0] != first.sample[0]  # a new customer is the newest match
    assert read_by_counting(system) - read == 4 * SLICE + 50 - 3 * SLICE  # slices 3 and 4
    await customers.write(rows(range(4 * SLICE + 50, 4 * SLICE + 60), seed=5))  # slice 4
    read = read_by_counting(system)
    third = await system.counter.count_all(customers.store, rule)
    assert third.size == await customers.truth(rule)
    assert read_by_counting(system) - read == 60  # slice 4 alone


async def test_a_chunk_in_flight_when_a_first_count_is_taken_leaves_it_standing(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """A chunk takes its numbers before its transaction writes them: the first count
    leaves the slices they may fall in to be read, so the chunk's commit does not make
    it stale (it was, and every rule was counted twice over)."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 3)  # 5 slices unknown; not the 2 written
    monkeypatch.setattr(counts, "LAG", 0.0)
    rule = "visits > 5"
    first = await reserve(system.db, customers.user, "customers", 150)  # 701-850, unwritten
    counted = await system.counter.count_all(customers.store, rule)
    assert counted.complete and counted.size == await customers.truth(rule)
    late = [
        {"_id": str(ObjectId()), "userId": customers.user, "n": n, "visits": 9, "spend": 1.0}
        for n in range(first, first + 150)
    ]
    await system.db.customers.insert_many(late)  # the chunk commits
    await customers.versions.changed(customers.user, range(first, first + 150))
    asked = commands(system).get("aggregate", 0)
    again = await system.counter.count_all(customers.store, rule)
    assert commands(system).get("aggregate", 0) == asked  # still standing
    assert again.complete and again.size == await customers.truth(rule) == counted.size + 150


async def test_a_first_counts_sample_stays_whole_when_the_newest_slices_change(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """The newest slices lie outside the database's count: when their customers stop
    matching, the sample is made up from under them, not left short."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 2)
    monkeypatch.setattr(counts, "LAG", 0.0)
    rule = "spend > 500"
    await system.counter.count_all(customers.store, rule)
    await customers.write(rows(range(2 * SLICE, 2 * SLICE + 300), seed=7, spend=0.0))
    again = await system.counter.count_all(customers.store, rule)
    truth = await customers.truth(rule)
    assert again.complete and again.size == truth and truth >= 10
    newest = customers.store["customers"].find(
        rule_filter(rule, Rule(rule).moment), projection={"_id": 1}, sort=[("n", -1)], limit=10
    )
    assert again.sample == [str(doc["_id"]) async for doc in newest]


async def test_a_first_count_stands_aside_when_a_slice_under_the_newest_moves(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """A customer of an older slice written again (an orders upload moving its spend)
    makes the database's count stale: the rule is counted again, right."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 2)
    monkeypatch.setattr(counts, "LAG", 0.0)
    rule = "spend > 500"
    await system.counter.count_all(customers.store, rule)
    before = await customers.truth(rule)
    await customers.write(rows(range(0, 40), seed=6, spend=10_000.0))  # slice 0
    again = await system.counter.count_all(customers.store, rule)
    assert again.complete and again.size == await customers.truth(rule) > before


async def test_a_first_count_is_asked_of_the_database_once_while_callers_keep_asking(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """A caller asking meanwhile reads the rule's entries from Redis: it must not drop
    the count of all the customers before it is kept (the bench's preview, polled every
    50 ms, counted its rule three times over)."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 2)
    rule = "visits > 2 AND spend > 100"
    before = commands(system).get("aggregate", 0)
    whole = asyncio.create_task(system.counter.count_all(customers.store, rule))
    answers = []
    while not whole.done():
        answers.append(await system.counter.count(customers.store, rule, wait=0))
        await asyncio.sleep(0.002)
    asked = commands(system).get("aggregate", 0) - before
    assert (await whole).size == await customers.truth(rule)
    assert asked == 1  # count_documents, once
    # A complete answer is whole: never the count before its sample was read.
    done = [a for a in [*answers, await whole] if a.complete]
    assert done and all(len(a.sample) == min(10, a.size) for a in done)


async def test_a_write_while_the_database_counts_leaves_that_count_stale(
    system: Crmd, customers: Customers, redis: Any, monkeypatch: pytest.MonkeyPatch
):
    """The database's count is kept with the versions read before it: a write to one of
    its slices that lands while it runs (another process importing) makes it stale."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 2)
    monkeypatch.setattr(counts, "LAG", 0.0)
    rule = "spend > 500"
    real = counting.TenantStore.__getitem__
    wrote = []

    def writing(store: Any, name: str) -> Any:
        collection = real(store, name)
        count = collection.count_documents

        async def count_then_write(*args: Any, **kwargs: Any) -> int:
            counted = await count(*args, **kwargs)
            if not wrote:  # the import's chunk lands after the count read, with a poll
                wrote.append(True)
                await customers.write(rows(range(0, 40), seed=9, spend=10_000.0))  # slice 0
                await system.counter.count(customers.store, rule, wait=0)
            return counted

        collection.count_documents = count_then_write  # type: ignore[method-assign]
        return collection

    monkeypatch.setattr(counting.TenantStore, "__getitem__", writing)
    counted = await system.counter.count_all(customers.store, rule)
    assert wrote  # the database's count missed the 40; the count answered never does
    assert counted.size == await customers.truth(rule)
    again = await system.counter.count(customers.store, rule, wait=0)
    assert again.complete and again.size == await customers.truth(rule)


async def test_a_rules_slices_hash_holds_slices_only(
    system: Crmd, customers: Customers, redis: Any, monkeypatch: pytest.MonkeyPatch
):
    """A process of the release before reads every field of a rule's hash as a slice
    number: the count of all the customers lives in a key of its own."""
    monkeypatch.setattr(counting, "GROUPED_FROM", 2)
    rule = Rule("spend > 400")
    await system.counter.count_all(customers.store, rule)
    _, kept_at = slices.slice_keys(system.config.redis.stream_prefix, customers.user)
    fields = await redis.hkeys(f"{kept_at}:{rule.key}")
    assert fields and all(int(f) >= 0 for f in fields)
    assert await redis.exists(f"{kept_at}:{rule.key}:whole")


async def test_a_rest_is_owed_only_when_counting_comes_back_before_it_is_over(
    system: Crmd, customers: Customers, monkeypatch: pytest.MonkeyPatch
):
    """Counting rests as long as it read before it reads again; time the user spent
    elsewhere counts toward the rest (a preview asked well after the last is not held)."""
    counter = system.counter
    runs: list[tuple[float, float]] = []
    count_run = counter._count_run

    async def slow(*args: Any) -> Any:
        began = asyncio.get_running_loop().time()
        await asyncio.sleep(0.3)  # a database slower than this one
        made = await count_run(*args)
        runs.append((began, asyncio.get_running_loop().time()))
        return made

    monkeypatch.setattr(counter, "_count_run", slow)
    await counter.count_all(customers.store, "visits > 1")
    ended = runs[-1][1]
    await counter.count_all(customers.store, "visits > 2")  # asked at once: it waits
    first_of_second = len(runs) - 3  # (three runs a count: one slice, two, then one)
    assert runs[first_of_second][0] - ended >= (ended - runs[first_of_second - 1][0]) * 0.9
    await asyncio.sleep(runs[-1][1] - runs[-1][0] + 0.1)  # the user looked elsewhere
    asked = asyncio.get_running_loop().time()
    await counter.count_all(customers.store, "visits > 3")
    assert runs[-3][0] - asked < 0.1  # not held
