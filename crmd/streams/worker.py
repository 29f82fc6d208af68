"""The stream worker: the one machine behind every stream actor.

Read a batch with XREADGROUP, let the handler apply it to MongoDB, and only then XACK.
A crash between the two leaves the batch pending, so it is applied again: handlers must
be idempotent, and that is the price of never losing an entry. At start the worker first
drains its own pending entries; every so often it takes over entries that another
(dead) consumer has left idle, and trims what every group has acknowledged. An entry
that has failed ``max_deliveries`` times goes to the dead-letter stream with its error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from crmd.config import StreamsConfig
from crmd.services.connect import DEPENDENCY_ERRORS
from crmd.streams import text_of
from crmd.telemetry.logs import describe_error
from crmd.telemetry.metrics import Metrics

log = structlog.get_logger(__name__)

StreamId = tuple[int, int]


class Entry(msgspec.Struct, frozen=True):
    id: str
    fields: dict[bytes, bytes]
    deliveries: int = 1
    """How many times this entry has been delivered, this time included."""


class DeadLetterHook(Protocol):
    async def __call__(self, entry: Entry, reason: str, /) -> None:
        """Told of an entry given up on, after it is in the dead-letter stream."""


class Handler(Protocol):
    async def __call__(self, entries: Sequence[Entry], /) -> None:
        """Apply ``entries`` idempotently and commit; raise if any could not be applied."""


def parse_id(raw: str | bytes) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def trim_floor(groups: Sequence[tuple[str, str | None]]) -> str | None:
    """The lowest id that must stay in the stream, given for each consumer group its
    last-delivered id and its oldest pending id (None when nothing is pending).

    Everything below it was delivered to and acknowledged by every group, so XTRIM MINID
    may drop it. No groups means nobody has read anything: nothing may go.
    """
    if not groups:
        return None
    floor = min(
        min(parse_id(last), parse_id(oldest)) if oldest else parse_id(last)
        for last, oldest in groups
    )
    return format_id(floor) if floor > (0, 0) else None


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    """Create the group at the stream's start (MKSTREAM): entries added before any
    consumer existed are still consumed."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


DEFAULT_HANDLER_TIMEOUT_MS = 600_000

# Reset the idle time of the entries this consumer still owns, and only those: an entry
# another consumer has taken meanwhile (after a long stall here) stays theirs.
_HOLD = """
local held = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    held = held + 1
  end
end
return held
"""


def handler_deadline(settings: StreamsConfig) -> float:
    """Seconds a handler may take over a batch before it is cancelled and the batch
    taken up again: ``handler_timeout_ms``, by default ten minutes. The batch is held
    (its idle time renewed) all the while, so no other consumer takes it meanwhile."""
    return (settings.handler_timeout_ms or DEFAULT_HANDLER_TIMEOUT_MS) / 1000


def dead_letter_stream(stream: str) -> str:
    return f"{stream}:dead"


class StreamWorker:
    def __init__(
        self,
        redis: Redis,
        stream: str,
        group: str,
        consumer: str,
        handler: Handler,
        settings: StreamsConfig,
        metrics: Metrics | None = None,
        on_dead: DeadLetterHook | None = None,
        on_caught_up: Callable[[], Awaitable[None]] | None = None,
        progressed: Callable[[], None] | None = None,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.handler = handler
        self.settings = settings
        self.metrics = metrics
        self.on_dead = on_dead
        self.on_caught_up = on_caught_up
        """Called after each read that found less than a full batch: the stream has
        been worked through for now (a place for work that is only worth doing once)."""
        self.progressed = progressed or (lambda: None)
        """Called each time the loop turns, so that a stuck worker can be told apart."""
        self.deadline = handler_deadline(settings)
        self.dead_letters = dead_letter_stream(stream)
        self._next_claim = 0.0
        self._next_trim = 0.0
        self._redrain = False
        """Set when a handler ran past its deadline: the entries it left are this
        consumer's own, taken up again at once rather than after claim_idle_ms."""
        self.log = log.bind(stream=stream, group=group, consumer=consumer)

    async def run(self, stop: asyncio.Event, on_ready: Callable[[], None] | None = None) -> None:
        """Work until ``stop`` is set; the batch in hand is finished and acked first.

        Ready as soon as the group exists: entries this consumer held when it last
        stopped (or died) are drained first, but inside the loop, a batch at a time and
        each batch acked as it is applied, so a large backlog never holds up start-up
        and a restart resumes where the last run stopped."""
        await ensure_group(self.redis, self.stream, self.group)
        if on_ready:
            on_ready()
        own_pending: str | None = "0"
        while not stop.is_set():
            self.progressed()
            if self._redrain:
                own_pending, self._redrain = "0", False
            if own_pending is not None:
                own_pending = await self.drain_own_pending(own_pending)
                continue
            await self.reclaim_if_due(stop)
            await self.trim_if_due()
            entries = await self.read_new()
            if entries:
                await self.apply(entries)
            if self.on_caught_up and len(entries) < self.settings.batch_size:
                await self.on_caught_up()

    # -- the steps ---------------------------------------------------------------------

    async def drain_own_pending(self, after: str) -> str | None:
        """Apply one batch of the entries this consumer already holds, from ``after``
        on; returns where the next batch starts, or None once there are none left."""
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: after}, count=self.settings.batch_size
        )
        raw = _entries(reply)
        if not raw:
            return None
        self.log.info("stream.pending_drained", entries=len(raw))
        await self.apply(await self._with_deliveries(raw))
        return text_of(raw[-1][0])

    async def read_new(self) -> list[Entry]:
        reply = await self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self.settings.batch_size,
            block=self.settings.block_ms,
        )
        raw = _entries(reply)
        return [Entry(text_of(i), f or {}, 1) for i, f in raw]

    async def reclaim_if_due(self, stop: asyncio.Event) -> None:
        """Take over entries idle for longer than ``claim_idle_ms``: their consumer died,
        or they failed here and wait for another try."""
        now = time.monotonic()
        if now < self._next_claim:
            return
        self._next_claim = now + self.settings.claim_interval_ms / 1000
        cursor = "0-0"
        for _ in range(10):  # bounded per round, so new entries are not starved
            reply: Any = await self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.settings.claim_idle_ms,
                start_id=cursor,
                count=self.settings.batch_size,
            )
            # Redis 6.2 answers (None, None) for a pending entry that was deleted from
            # the stream; there is nothing to apply, and draining our own PEL clears it.
            cursor, raw = text_of(reply[0]), [e for e in reply[1] if e[0] is not None]
            if raw:
                self.log.info("stream.reclaimed", entries=len(raw))
                await self.apply(await self._with_deliveries(raw))
            if cursor == "0-0" or stop.is_set():
                return

    async def apply(self, entries: Sequence[Entry]) -> None:
        """Hand the batch to the handler and ack it. When the batch fails, apply its
        entries one by one, so that one bad entry does not hold back the rest."""
        gone = [e for e in entries if not e.fields]
        live = [e for e in entries if e.fields]
        if gone:  # trimmed or deleted while pending: nothing left to apply
            await self._ack(gone, "gone")
        if not live:
            return
        holding = asyncio.create_task(self._hold(live))
        try:
            async with asyncio.timeout(self.deadline):
                await self.handler(live)
        except TimeoutError:
            # A handler this late is stuck: give the batch up and start it again.
            self.log.error("stream.handler_timeout", entries=len(live), seconds=self.deadline)
            self._count("timed_out", len(live))
            # Left pending, and taken up again by this consumer at once (the handler
            # was cancelled, so nothing works on them now): whatever the handler acked
            # on the way is not redone, so a batch too large for one deadline is
            # worked through over several.
            self._redrain = True
            return
        except DEPENDENCY_ERRORS:
            raise  # not the entries' fault: the actor restarts and they are redone
        except Exception as exc:
            if len(live) == 1:
                await self._failed(live[0], exc)
                return
            self.log.warning("stream.batch_failed", entries=len(live), error=_reason(exc))
            for entry in live:
                await self.apply([entry])
            return
        finally:
            holding.cancel()
        await self._ack(live, "acked")

    async def _hold(self, entries: Sequence[Entry]) -> None:
        """While the handler works, renew the entries' claim well within
        ``claim_idle_ms``: to the other consumers they never look abandoned. When this
        process dies the renewals stop, and after the idle time another takes over."""
        every = self.settings.claim_idle_ms / 3000
        ids = [e.id for e in entries]
        while True:
            await asyncio.sleep(every)
            try:
                await self.redis.eval(_HOLD, 1, self.stream, self.group, self.consumer, *ids)
            except DEPENDENCY_ERRORS as exc:  # the handler will meet it too
                self.log.warning("stream.hold_failed", error=_reason(exc))

    async def trim_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_trim:
            return
        self._next_trim = now + self.settings.trim_interval_ms / 1000
        await self.trim()

    async def trim(self) -> int:
        """Drop the entries every group has acknowledged; never a pending one."""
        positions = []
        for group in await self.redis.xinfo_groups(self.stream):
            oldest = None
            if group["pending"]:
                summary = await self.redis.xpending(self.stream, group["name"])
                oldest = text_of(summary["min"]) if summary["min"] else None
            positions.append((text_of(group["last-delivered-id"]), oldest))
        floor = trim_floor(positions)
        if floor is None:
            return 0
        removed: int = await self.redis.xtrim(self.stream, minid=floor, approximate=False)
        if removed:
            self.log.debug("stream.trimmed", removed=removed, floor=floor)
        return removed

    # -- helpers -----------------------------------------------------------------------

    async def _with_deliveries(self, raw: Sequence[Any]) -> list[Entry]:
        """Pending entries carry how often they were delivered; XPENDING knows."""
        first, last = text_of(raw[0][0]), text_of(raw[-1][0])
        detail = await self.redis.xpending_range(
            self.stream,
            self.group,
            min=first,
            max=last,
            count=len(raw),
            consumername=self.consumer,
        )
        counts = {text_of(d["message_id"]): int(d["times_delivered"]) for d in detail}
        return [Entry(text_of(i), f or {}, counts.get(text_of(i), 1)) for i, f in raw]

    async def _ack(self, entries: Sequence[Entry], outcome: str) -> None:
        await self.redis.xack(self.stream, self.group, *[e.id for e in entries])
        self._count(outcome, len(entries))

    async def _failed(self, entry: Entry, exc: Exception) -> None:
        reason = _reason(exc)
        if entry.deliveries < self.settings.max_deliveries:
            self.log.warning(
                "stream.entry_failed", entry_id=entry.id, deliveries=entry.deliveries, error=reason
            )
            self._count("retried", 1)
            return  # stays pending; reclaimed after claim_idle_ms
        # The dead letter and the ack go together, or neither does.
        async with self.redis.pipeline(transaction=True) as pipe:
            letter: dict[Any, Any] = {
                **entry.fields,
                b"_dead_source_id": entry.id.encode(),
                b"_dead_group": self.group.encode(),
                b"_dead_deliveries": str(entry.deliveries).encode(),
                b"_dead_error": reason.encode(),
            }
            pipe.xadd(self.dead_letters, letter)
            pipe.xack(self.stream, self.group, entry.id)
            await pipe.execute()
        self.log.error(
            "stream.dead_lettered", entry_id=entry.id, deliveries=entry.deliveries, error=reason
        )
        self._count("dead", 1)
        if self.on_dead is not None:
            try:
                await self.on_dead(entry, reason)
            except Exception:
                self.log.exception("stream.dead_letter_hook_failed", entry_id=entry.id)

    def _count(self, outcome: str, n: int) -> None:
        if self.metrics is not None and n:
            self.metrics.stream_entries.labels(self.stream, outcome).inc(n)


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
    """The entries of a one-stream XREADGROUP reply."""
    return list(reply[0][1]) if reply else []


def _reason(exc: BaseException) -> str:
    return describe_error(exc, 2000)


async def stream_stats(redis: Redis, stream: str) -> dict[str, Any]:
    """Length, and per group pending (delivered, not yet acked) and lag (not yet
    delivered), for /metrics, /readyz and the console's System page."""
    length = await redis.xlen(stream)
    groups = {}
    try:
        infos = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream yet
        infos = []
    for info in infos:
        pending = int(info["pending"])
        lag = info.get("lag")
        if lag is None:  # Redis before 7 does not say
            lag = await undelivered(redis, stream, text_of(info["last-delivered-id"]))
        groups[text_of(info["name"])] = {"pending": pending, "lag": int(lag)}
    return {"length": length, "groups": groups}


LAG_COUNTED = 50
"""Where ``undelivered`` stops counting (each entry read costs its payload)."""


async def undelivered(redis: Redis, stream: str, last_delivered: str) -> int:
    """The entries after a group's last delivered one, counted up to ``LAG_COUNTED``.
    Not the stream's length less the pending: acknowledged entries stay in the stream
    until the next trim, and are no lag (a stream with all its work done showed 1)."""
    newest = await redis.xrevrange(stream, count=1)
    if not newest or text_of(newest[0][0]) == last_delivered:
        return 0
    after = await redis.xrange(stream, min=f"({last_delivered}", max="+", count=LAG_COUNTED)
    return len(after or [])
