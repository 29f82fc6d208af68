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
evaluator). Reading costs the database the same for one rule or ten; only
``count_slots`` runs are read at once in a process, whatever the number of users, so
counting never takes more than that share of the database from imports and sends. A
caller waits for its count a bounded time and then has what is counted so far with its
progress; the counting goes on without it.

While writes go on (an import), a slice counted within ``LAG`` seconds stands although
its version moved since: a count may miss the rows stored in the last two seconds, and
a slice written to continuously is read once per ``LAG``, not once per chunk.
A rule with an age (``lastActive < 90d``) is counted against now rounded down to
the hour (``MOMENT_STEP``), so that it is counted again from scratch once an hour, not
on every request. No count older than ``TRUSTED_FOR`` is used, whatever its version.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
import structlog
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ExecutionTimeout
from redis.asyncio import Redis

from crmd.segments.ast import And, Compare, Exists, InList, Node, Not, Or, Relative
from crmd.segments.audience import flat_filter
from crmd.segments.evaluate import evaluate
from crmd.segments.parse import RuleError, parse_rule
from crmd.segments.query import InvalidRule, rule_filter, rule_now
from crmd.segments.slices import SLICE, CustomerVersions, numbers_of, slice_keys, slice_of
from crmd.store.numbering import highest
from crmd.store.tenant import TenantStore
from crmd.telemetry.logs import describe_error
from crmd.telemetry.metrics import Metrics
from crmd.telemetry.mongo import charge_task_to

log = structlog.get_logger(__name__)

SAMPLE = 10
LAG = 2.0
TRUSTED_FOR = 6 * 3600.0
MOMENT_STEP = 3600
MAX_RUN = 8
"""Slices read at most in one go (8,000 customers, about half a second of SecantusDB's
time): a count of another user waits at most that long for the database."""
ASKED_FOR = 60.0
"""Seconds a rule is tracked after it was last asked for."""
MAX_RULES = 32
"""Rules tracked per user at most (the oldest asked goes first)."""
KEPT_FOR = 2 * 86400
"""A rule's entries are dropped from Redis after two days without a count."""
FLAT_BUDGET_MS = 250
"""How long the database may take to count a rule of plain comparisons through its
index, slice by slice in one go, before the rule is read slice by slice instead."""
_SLICE_OF_N = {"$floor": {"$divide": [{"$subtract": ["$n", 1]}, SLICE]}}


class Entry(msgspec.Struct, array_like=True):
    """One rule over one slice."""

    version: int
    size: int
    at: float
    """When it was counted (Unix seconds)."""
    sample: list[str] = []
    """The ids of its newest matches, up to ``SAMPLE``, newest first."""


class Count(msgspec.Struct):
    size: int
    """The matches among the customers counted (all of them, when ``complete``)."""
    complete: bool
    progress: float
    """The share of the customers whose count is current."""
    moment: datetime
    """The moment the rule's ages were measured from."""
    sample: list[str]
    """The ids of up to ``SAMPLE`` of the newest matches, newest first."""


_ENTRY = msgspec.msgpack.Decoder(Entry)
_ENCODE = msgspec.msgpack.Encoder()


class Rule:
    """A rule to count: parsed, with the moment it is measured at and its cache key."""

    def __init__(self, text: str, now: datetime | None = None) -> None:
        moment = now or rule_now()
        try:
            self.node: Node = parse_rule(text)
        except RuleError as exc:
            raise InvalidRule(exc) from None
        self.timed = _has_age(self.node)
        if self.timed:  # ages move with time: counted against a moment that moves in steps
            epoch = int(moment.timestamp()) // MOMENT_STEP * MOMENT_STEP
            moment = datetime.fromtimestamp(epoch, UTC)
        # Any rule the database could not run is refused here too.
        self.flat = flat_filter(rule_filter(text, moment))
        """The rule as one filter of plain conditions, when it is one: the database can
        then count it through an index (``AudienceCounter._count_indexed``)."""
        self.moment = moment
        encoded = msgspec.json.encode([self.node, moment.isoformat() if self.timed else None])
        self.key = hashlib.sha256(encoded).hexdigest()[:32]
        self.fields = sorted(_fields(self.node))


class Job:
    """One rule being counted, or asked for lately, for one user: what is known of it."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.entries: dict[int, Entry] = {}
        self.versions: dict[int, int] = {}
        self.top = 0
        self.asked = time.monotonic()
        self.indexed = False
        """Whether counting it through an index was tried."""
        self.moved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Resolved when the worker has looked at it again (with the error that stopped
        counting, if one did); then replaced."""

    def stale(self, now: float) -> list[int]:
        """The slices whose count is not current."""
        return [
            k
            for k in range(slice_of(self.top) + 1 if self.top else 0)
            if not _fresh(self.entries.get(k), self.versions.get(k, 0), now)
        ]

    def tell(self, error: BaseException | None = None) -> None:
        """Wake whoever waits for this job."""
        if error is None:
            self.moved.set_result(None)
        else:
            self.moved.set_exception(error)
            self.moved.exception()  # (retrieved: nobody may be waiting)
        self.moved = asyncio.get_running_loop().create_future()

    def count(self, now: float) -> Count:
        fresh = [
            (k, e)
            for k, e in sorted(self.entries.items(), reverse=True)
            if k <= slice_of(self.top) and _fresh(e, self.versions.get(k, 0), now)
        ]
        counted = sum(min(numbers_of(k)[1], self.top + 1) - numbers_of(k)[0] for k, _ in fresh)
        sample: list[str] = []
        for _, entry in fresh:
            sample += entry.sample[: SAMPLE - len(sample)]
        complete = not self.top or counted >= self.top
        return Count(
            size=sum(e.size for _, e in fresh),
            complete=complete,
            progress=1.0 if complete else round(counted / self.top, 3),
            moment=self.rule.moment,
            sample=sample,
        )


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
        user = store.user_id
        job = self._track(user).setdefault(counted.key, Job(counted))
        job.asked = time.monotonic()
        deadline = None if wait is None else time.monotonic() + wait
        await self._refresh(user, [job])
        while True:  # (woken, the job holds what the worker read and counted)
            now = time.time()
            if not job.stale(now):
                return job.count(now)
            worker = self._workers.get(user)
            if worker is None or worker.done():
                self._workers[user] = asyncio.create_task(self._work(user), name=f"counts:{user}")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return job.count(now)
            try:
                await asyncio.wait_for(asyncio.shield(job.moved), left)
            except TimeoutError:
                return job.count(time.time())

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

    async def _refresh(self, user: str, jobs: Iterable[Job]) -> None:
        """Read the slices' versions, the highest number and each job's entries."""
        jobs = list(jobs)
        versions_key, counts = slice_keys(self.prefix, user)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(versions_key)
            for job in jobs:
                pipe.hgetall(f"{counts}:{job.rule.key}")
            stored = await pipe.execute()
        top = await highest(self.db, user, "customers")
        versions = {int(k): int(v) for k, v in stored[0].items()}
        for job, entries in zip(jobs, stored[1:], strict=True):
            job.versions, job.top = versions, top
            job.entries = {int(k): _ENTRY.decode(v) for k, v in entries.items()}

    async def _work(self, user: str) -> None:
        """Count the user's tracked rules until each is current, newest slices first."""
        charge_task_to("counts")
        store = TenantStore(self.db, user)
        run = 1
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
                cold = [j for j in jobs if j.rule.flat and not j.indexed and not j.entries]
                for job in cold:
                    job.indexed = True
                    await self._count_indexed(store, job)
                if not cold and needing:  # the newest stale slice and those right under it
                    newest = lowest = max(needing)
                    while lowest - 1 in needing and newest - lowest + 1 < run:
                        lowest -= 1
                    await self._count_run(store, lowest, newest, jobs)
                    run = min(run * 2, MAX_RUN)
                for job in jobs:
                    job.tell()
                if not cold and not needing:
                    return
        except Exception as exc:  # the database or Redis went away: the waiters hear it
            log.warning("counts.stopped", user=user, error=describe_error(exc))
            for job in jobs:
                job.tell(exc)
        finally:
            self.metrics.counts_waiting.set(0)

    async def _count_indexed(self, store: TenantStore, job: Job) -> None:
        """A rule never counted before, of plain comparisons: the database counts its
        matches in every slice at once through the index on its field (a selective
        rule reads only its matches), within ``FLAT_BUDGET_MS``. The newest slices
        holding its first ``SAMPLE`` matches are left to be read, for the sample."""
        assert job.rule.flat is not None
        versions, top = job.versions, job.top
        asked = time.monotonic()
        async with self._slots:
            self.metrics.count_wait.observe(time.monotonic() - asked)
            started = time.time()
            try:
                cursor = await store["customers"].aggregate(
                    [
                        {"$match": job.rule.flat},
                        {"$group": {"_id": _SLICE_OF_N, "c": {"$sum": 1}}},
                    ],
                    maxTimeMS=FLAT_BUDGET_MS,
                )
                sizes = {int(group["_id"]): int(group["c"]) async for group in cursor}
            except ExecutionTimeout:
                return  # a rule most customers match: read slice by slice
        wanted = SAMPLE
        made: dict[int, Entry] = {}
        for k in range(slice_of(top), -1, -1):
            size = sizes.get(k, 0)
            if wanted > 0 and size:
                wanted -= size
                continue
            made[k] = Entry(versions.get(k, 0), size, started)
        job.entries.update(made)
        await self._keep(store.user_id, {job: made})

    async def _keep(self, user: str, made: dict[Job, dict[int, Entry]]) -> None:
        """Store jobs' new entries in Redis."""
        _, counts = slice_keys(self.prefix, user)
        async with self.redis.pipeline(transaction=False) as pipe:
            for job, entries in made.items():
                if not entries:
                    continue
                key = f"{counts}:{job.rule.key}"
                pipe.hset(key, mapping={str(k): _ENCODE.encode(e) for k, e in entries.items()})
                pipe.expire(key, KEPT_FOR)
            await pipe.execute()

    async def _count_run(self, store: TenantStore, first: int, last: int, jobs: list[Job]) -> None:
        """Read slices ``first``..``last`` once, test every job's rule on each customer,
        and keep each job's count of each slice."""
        versions = jobs[0].versions
        lo, hi = numbers_of(first)[0], numbers_of(last)[1]
        fields = sorted({f for job in jobs for f in job.rule.fields})
        sizes = {job.rule.key: [0] * (last - first + 1) for job in jobs}
        newest: dict[str, list[deque[str]]] = {
            job.rule.key: [deque(maxlen=SAMPLE) for _ in range(last - first + 1)] for job in jobs
        }
        asked = time.monotonic()
        async with self._slots:
            self.metrics.count_wait.observe(time.monotonic() - asked)
            started = time.time()
            cursor = store["customers"].find(
                {"n": {"$gte": lo, "$lt": hi}},
                projection={"n": 1, **dict.fromkeys(fields, 1)},
                batch_size=SLICE,
            )
            async for doc in cursor:
                place = slice_of(doc["n"]) - first
                for job in jobs:
                    if evaluate(job.rule.node, doc, job.rule.moment):
                        sizes[job.rule.key][place] += 1
                        newest[job.rule.key][place].append(str(doc["_id"]))
        made = {
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
        for job, entries in made.items():
            job.entries.update(entries)
        await self._keep(store.user_id, made)


def _fresh(entry: Entry | None, version: int, now: float) -> bool:
    if entry is None or now - entry.at > TRUSTED_FOR:
        return False
    return entry.version == version or now - entry.at < LAG


def _walk(node: Node) -> Iterable[Node]:
    yield node
    if isinstance(node, And | Or):
        for item in node.items:
            yield from _walk(item)
    elif isinstance(node, Not):
        yield from _walk(node.item)


def _has_age(node: Node) -> bool:
    for part in _walk(node):
        if isinstance(part, Compare) and isinstance(part.value, Relative):
            return True
        if isinstance(part, InList) and any(isinstance(v, Relative) for v in part.values):
            return True
    return False


def _fields(node: Node) -> set[str]:
    return {p.field for p in _walk(node) if isinstance(p, Compare | InList | Exists)}
