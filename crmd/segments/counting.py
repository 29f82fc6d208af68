"""Audience counts that cost the database what changed since the last count, not every
customer again.

A rule's count is kept per slice of the user's customers (``crmd.segments.slices``),
each with the slice's version when it was counted, in Redis, shared by every process. A
count asked for again (the same rule typed twice, or by two people, or the clock's
refresh of a saved segment) reads those entries and counts again only the slices whose
version has moved: an import of new customers changes the newest slices only. A rule is
known by its parsed form, so ``spend>1000`` and ``spend > 1,000`` are one rule.

Counting is done in the background, one task per user in each process: it reads a run
of slices (the newest stale one first, then runs of up to ``MAX_RUN`` slices) once for
every rule being counted for that user, and tests each customer in Python (the reference
evaluator). Reading costs the database the same for one rule or ten. A rule with many
slices unknown (``GROUPED_FROM``) is counted by the database instead, reading no
customer: a first count is the database's own count of the rule, less the newest two
slices (read in the same snapshot), good until one of the others moves (an import
appending new customers moves only the newest and those after them, which are read);
after that, each slice's count in one pass grouped by slice. Only
``count_slots`` runs are read at once in a process, whatever the number of users, and
after each run (or each rule's first count: on SecantusDB, a first count of 50,000
customers slows every other command for its second or two) a user's counting rests as
long as the run took (``REST``), so counting never takes more than that share of the
database from imports, sends and pages. A
caller waits for its count a bounded time and then has what is counted so far with its
progress; the counting goes on without it.

Without Redis (it went away), a count is the database's own count of the rule, as a
write needs one (a campaign's audience); it is kept nowhere.

What a count is made of, and when it is current: ``crmd.segments.counts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any

import structlog
from aiohttp import web
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.read_concern import ReadConcern
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmd.segments import kept
from crmd.segments.counts import SAMPLE, Count, Entry, Job, Rule, Whole, sample_of
from crmd.segments.evaluate import evaluate
from crmd.segments.slices import SLICE, CustomerVersions, numbers_of, runs, slice_of
from crmd.store.numbering import highest
from crmd.store.tenant import TenantStore
from crmd.telemetry.logs import describe_error
from crmd.telemetry.metrics import Metrics
from crmd.telemetry.mongo import charge_task_to

log = structlog.get_logger(__name__)

MAX_RUN = 8
"""Slices read at most in one go (8,000 customers, about half a second of SecantusDB's
time): a count of another user waits at most that long for the database."""
GROUPED_FROM = 2 * MAX_RUN
"""Stale slices of a rule from which the database counts all of its slices in one pass,
grouped by slice, rather than crmd reading their customers to test: a first count, or
one an hour moved the moment of. It costs the database about what its own count of the
rule costs (its plan, its indexes), where reading runs of slices costs a read of every
customer; only the newest slices with matches are then read, for the sample."""
MARGIN = 1
"""Slices under the newest that a first count reads itself: chunks in flight (two of the
default 500 rows) have their numbers and may still write them, making it stale."""
REST = 1.0
"""After each run of slices, counting pauses this many times as long as the run took."""
WAKE = 1.0
"""A waiter looks at its job again at least this often (seconds)."""
ASKED_FOR = 60.0
"""Seconds a rule is tracked after it was last asked for."""
MAX_RULES = 32
"""Rules tracked per user at most (the oldest asked goes first)."""


class AudienceCounter:
    """Counts rules over users' customers, slice by slice, keeping each slice's count.

    Each user's rules asked for in the last ``ASKED_FOR`` seconds (``MAX_RULES`` at
    most) are tracked: every run of slices read for any of them is tested against all
    of them, so that the counts of a slice an import keeps writing to are taken
    together, once per ``LAG``, however many rules people are looking at."""

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        redis: Redis,
        prefix: str,
        metrics: Metrics,
        *,
        slots: int = 1,
        wait: float = 0.5,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.wait = wait
        """How long ``count`` waits for a count that is not current."""
        self.redis = redis
        self.prefix = prefix
        self.versions = CustomerVersions(redis, prefix)
        self._slots = asyncio.Semaphore(slots)
        self._jobs: dict[str, dict[str, Job]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._rested: dict[str, float] = {}  # when a user's counting may read again

    async def count(self, store: TenantStore, rule: str | Rule, wait: float | None = None) -> Count:
        """``rule``'s count over the store's user's customers: at once when what is kept
        is current; else counted, waiting at most ``wait`` seconds (by default the
        counter's ``wait``) before answering with what is counted so far (the counting
        goes on). InvalidRule (422) for a bad rule."""
        return await self._count(store, rule, self.wait if wait is None else wait)

    async def count_all(self, store: TenantStore, rule: str | Rule) -> Count:
        """``rule``'s whole count, however long it takes (for writes: a campaign's
        audience when it is created)."""
        return await self._count(store, rule, None)

    async def _count(self, store: TenantStore, rule: str | Rule, wait: float | None) -> Count:
        counted = rule if isinstance(rule, Rule) else Rule(rule)
        try:
            return await self._counted(store, counted, wait)
        except RedisError as exc:
            log.warning("counts.without_redis", user=store.user_id, error=describe_error(exc))
            return await self._count_direct(store, counted)

    async def _counted(self, store: TenantStore, counted: Rule, wait: float | None) -> Count:
        user = store.user_id
        job = self._track(user).setdefault(counted.key, Job(counted))
        deadline = None if wait is None else time.monotonic() + wait
        await self._refresh(user, [job])
        while True:  # (woken, the job holds what the worker read and counted)
            # Asked for again, and tracked again should it have been dropped meanwhile
            # (``MAX_RULES`` others asked for since): the worker counts what is tracked.
            job.asked = time.monotonic()
            job = self._track(user).setdefault(counted.key, job)
            now = time.time()
            if not job.stale(now):
                return job.count(now)
            worker = self._workers.get(user)
            if worker is None or worker.done():
                self._workers[user] = asyncio.create_task(self._work(user), name=f"counts:{user}")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return job.count(now)
            try:  # (a dropped job is never woken: look again every second)
                await asyncio.wait_for(asyncio.shield(job.moved), min(left or WAKE, WAKE))
            except TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    return job.count(time.time())

    async def _count_direct(self, store: TenantStore, rule: Rule) -> Count:
        """The database's own count of the rule, and its newest matches as the sample."""
        async with self._slot():
            size = await store["customers"].count_documents(rule.filter)
        sample = await self._newest(store, rule)
        return Count(size=size, complete=True, progress=1.0, moment=rule.moment, sample=sample)

    def _track(self, user: str) -> dict[str, Job]:
        """The user's tracked rules, those not asked for lately dropped."""
        tracked = self._jobs.setdefault(user, {})
        now = time.monotonic()
        for key, job in list(tracked.items()):
            if now - job.asked > ASKED_FOR:
                del tracked[key]
        while len(tracked) >= MAX_RULES:
            del tracked[min(tracked, key=lambda key: tracked[key].asked)]
        return tracked

    async def close(self) -> None:
        """Stop counting (the counts kept so far stay)."""
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        self._workers.clear()
        self._jobs.clear()
        self._rested.clear()

    async def _refresh(self, user: str, jobs: Iterable[Job]) -> None:
        """Read the slices' versions, the highest number and each job's entries."""
        top = await highest(self.db, user, "customers")
        await kept.read(self.redis, self.prefix, user, list(jobs), top)

    async def _work(self, user: str) -> None:
        """Count the user's tracked rules until each is current, newest slices first."""
        charge_task_to("counts")
        store = TenantStore(self.db, user)
        run = 1
        cold_turn = False  # (the last turn was a first count)
        jobs: list[Job] = []
        try:
            while True:
                jobs = list(self._track(user).values())
                self.metrics.counts_waiting.set(len(jobs))
                await self._refresh(user, jobs)
                now = time.time()
                needing: set[int] = set()
                for job in jobs:
                    needing.update(job.stale(now))
                # Counting rests as long as it read, before it reads again: at most half
                # of the database's time, however many slices are left to read, and
                # nothing to wait for when the last count was longer ago than it took.
                resting = self._rested.get(user, 0.0) - time.monotonic()
                if needing and resting > 0:
                    await asyncio.sleep(resting)
                    continue
                began = time.monotonic()
                # Many slices unknown: the database counts them (no customer read).
                many = max(GROUPED_FROM, (slice_of(max(job.top for job in jobs)) + 1) // 2)
                grouped = [job for job in jobs if len(job.stale(now)) >= many]
                cold = [job for job in grouped if job.cold(now)]
                # A first count reads every customer in the database: one rule's at a
                # time, and, while the others' counts are owed too, every other turn.
                warm = [job for job in jobs if job not in cold]
                owed = {k for job in warm for k in job.stale(now)}
                if cold and not (owed and cold_turn):
                    await self._count_whole(store, cold[0], warm)
                    cold_turn = True
                elif grouped := [job for job in grouped if job in warm]:
                    await self._count_grouped(store, grouped)
                    cold_turn = False
                elif owed:  # the newest stale slice and those right under it
                    newest = lowest = max(owed)
                    while lowest - 1 in owed and newest - lowest + 1 < run:
                        lowest -= 1
                    await self._count_run(store, lowest, newest, warm)
                    run = min(run * 2, MAX_RUN)
                    cold_turn = False
                if needing:
                    ended = time.monotonic()
                    self._rested[user] = ended + (ended - began) * REST
                for job in jobs:
                    job.tell()
                if not needing:
                    return
        except Exception as exc:  # the database or Redis went away: the waiters hear it
            log.warning("counts.stopped", user=user, error=describe_error(exc))
            for job in jobs:
                job.tell(exc)
        finally:
            self.metrics.counts_waiting.set(0)

    async def _count_whole(self, store: TenantStore, job: Job, beside: list[Job]) -> None:
        """A first count: the database's own ``count_documents`` of the rule and, in the
        same snapshot, the newest ``MARGIN + 1`` slices read (for ``beside`` too): the one
        less the other counts the slices under them (``Whole``), which an import that
        appends leaves current. Kept at once with its own sample: never half counted."""
        started = time.time()
        below = max(slice_of(job.top) - MARGIN, 0)
        taken_at = job.digest(below)  # (before the count: a write meanwhile makes it stale)
        beside = [j for j in beside if any(k >= below for k in j.stale(started))]
        # One snapshot: the import's rows landing meanwhile are in both reads or in neither.
        snapshot = ReadConcern("snapshot")
        async with (
            self._slot(),
            self.db.client.start_session() as session,
            await session.start_transaction(read_concern=snapshot),
        ):
            size = await store["customers"].count_documents(job.rule.filter, session=session)
            top = slice_of(await highest(self.db, store.user_id, "customers", session))
            made = await self._read_run(store, below, top, [job, *beside], session)
        size -= sum(e.size for e in made[job].values())
        whole = Whole(taken_at, size, started, below=below)
        # Its sample: a slice under, then two, then four; for a rarer rule, the database's.
        read: dict[int, Entry] = {}
        first = last = below - 1
        while len(whole.sample) < min(SAMPLE, size) and last >= 0 and below - last <= MAX_RUN:
            async with self._slot():
                read.update((await self._read_run(store, first, last, [job]))[job])
            whole.sample = sample_of(read)
            first, last = max(first - 2 * (last - first + 1), 0, below - MAX_RUN), first - 1
        if len(whole.sample) < min(SAMPLE, size):
            under = {"n": {"$lt": numbers_of(below)[0]}}
            whole.sample = await self._newest(store, job.rule, under)
        made[job].update(read)
        for other, entries in made.items():
            other.entries.update(entries)
        job.whole = whole  # (whole, sample and all: a waiter may look at it now)
        await kept.keep(self.redis, self.prefix, store.user_id, made, {job: whole})

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """One of the process's ``count_slots``: the database is read in it."""
        asked = time.monotonic()
        async with self._slots:
            self.metrics.count_wait.observe(time.monotonic() - asked)
            yield

    async def _newest(
        self, store: TenantStore, rule: Rule, among: dict[str, Any] | None = None
    ) -> list[str]:
        """The ids of the rule's newest matches (``among`` those that filter selects)."""
        query = rule.filter if among is None else {"$and": [rule.filter, among]}
        async with self._slot():
            found = store["customers"].find(
                query, projection={"_id": 1}, sort=[("n", -1)], limit=SAMPLE
            )
            return [str(doc["_id"]) async for doc in found]

    async def _count_grouped(self, store: TenantStore, jobs: list[Job]) -> None:
        """Every slice of each job's rule counted by the database in one pass, grouped by
        slice; then the newest slices with matches read, for the sample."""
        versions, top = jobs[0].versions, jobs[0].top
        slices = slice_of(top) + 1
        started = time.time()
        made: dict[Job, dict[int, Entry]] = {}
        for job in jobs:
            sizes = [0] * slices
            async with self._slot():
                slice_of_n = {"$floor": {"$divide": [{"$subtract": ["$n", 1]}, SLICE]}}
                grouped = {"$group": {"_id": slice_of_n, "size": {"$sum": 1}}}
                cursor = await store["customers"].aggregate([{"$match": job.rule.filter}, grouped])
                async for group in cursor:
                    k = group["_id"]
                    if isinstance(k, int | float) and 0 <= k < slices:
                        sizes[int(k)] = group["size"]
            made[job] = {k: Entry(versions.get(k, 0), n, started) for k, n in enumerate(sizes)}
        sampled: set[int] = set()
        for entries in made.values():  # the newest slices that hold a sample's matches
            newest = sorted((k for k, e in entries.items() if e.size), reverse=True)
            held = itertools.accumulate(entries[k].size for k in newest)  # (up to and with k)
            upto = zip(newest, held, strict=True)
            sampled.update(k for k, total in upto if total - entries[k].size < SAMPLE)
        for first, last in runs(sorted(sampled)):  # (read first: kept with their sample)
            await self._count_run(store, first, last, jobs)
        for job, entries in made.items():
            unread = {k: e for k, e in entries.items() if k not in sampled}
            made[job] = unread
            job.entries.update(unread)
        await kept.keep(self.redis, self.prefix, store.user_id, made)

    async def _count_run(
        self, store: TenantStore, first: int, last: int, jobs: list[Job]
    ) -> dict[Job, dict[int, Entry]]:
        """Read slices ``first``..``last`` once, test every job's rule on each customer,
        and keep (and return) each job's count of each slice."""
        async with self._slot():
            made = await self._read_run(store, first, last, jobs)
        for job, entries in made.items():
            job.entries.update(entries)
        await kept.keep(self.redis, self.prefix, store.user_id, made)
        return made

    async def _read_run(
        self,
        store: TenantStore,
        first: int,
        last: int,
        jobs: list[Job],
        session: AsyncClientSession | None = None,
    ) -> dict[Job, dict[int, Entry]]:
        """Each job's count of slices ``first``..``last`` (the caller holds a slot, keeps)."""
        versions = jobs[0].versions
        lo, hi = numbers_of(first)[0], numbers_of(last)[1]
        fields = sorted({f for job in jobs for f in job.rule.fields})
        sizes = {job.rule.key: [0] * (last - first + 1) for job in jobs}
        newest: dict[str, list[deque[str]]] = {
            job.rule.key: [deque(maxlen=SAMPLE) for _ in range(last - first + 1)] for job in jobs
        }
        started = time.time()
        cursor = store["customers"].find(
            {"n": {"$gte": lo, "$lt": hi}},
            projection={"n": 1, **dict.fromkeys(fields, 1)},
            batch_size=SLICE // 4,
            session=session,
        )
        async for doc in cursor:
            place = slice_of(doc["n"]) - first
            for job in jobs:
                if evaluate(job.rule.node, doc, job.rule.moment):
                    sizes[job.rule.key][place] += 1
                    newest[job.rule.key][place].append(str(doc["_id"]))
        return {
            job: {
                first + i: Entry(
                    versions.get(first + i, 0),
                    size,
                    started,
                    list(reversed(newest[job.rule.key][i])),
                )
                for i, size in enumerate(sizes[job.rule.key])
            }
            for job in jobs
        }


COUNTS: web.AppKey[AudienceCounter] = web.AppKey("counts")
"""The process's counter, for handlers (set by the composition root)."""
