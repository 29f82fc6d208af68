"""What is known of a rule's count over one user's customers: per slice, each entry
with the slice's version when it was counted (``crmd.segments.counting`` does the
counting).

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
from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec

from crmd.segments.ast import And, Compare, EventCount, Exists, InList, Node, Not, Or, Relative
from crmd.segments.parse import RuleError, parse_rule
from crmd.segments.query import InvalidRule, rule_filter, rule_now
from crmd.segments.slices import numbers_of, slice_of

SAMPLE = 10
LAG = 2.0
TRUSTED_FOR = 6 * 3600.0
MOMENT_STEP = 3600


class Entry(msgspec.Struct, array_like=True):
    """One rule over one slice."""

    version: int
    size: int
    at: float
    """When it was counted (Unix seconds)."""
    sample: list[str] = []
    """The ids of its newest matches, up to ``SAMPLE``, newest first."""


class Whole(msgspec.Struct, array_like=True):
    """One rule over every slice below ``below`` at once: the database's own count of
    it, right for as long as none of those slices has moved since (``versions``, a digest
    of theirs). The slices from ``below`` up, where an import appends, are counted one by
    one beside it, so that new customers never make it stale."""

    versions: str
    size: int
    at: float
    sample: list[str] = []
    """The newest matches below ``below``, newest first."""
    below: int = 0


def digest(versions: dict[int, int], below: int) -> str:
    """What the versions of the slices under ``below`` come to, in a few bytes."""
    encoded = msgspec.msgpack.encode([below, sorted(i for i in versions.items() if i[0] < below)])
    return hashlib.blake2b(encoded, digest_size=12).hexdigest()


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


ENTRY = msgspec.msgpack.Decoder(Entry)
WHOLE_ENTRY = msgspec.msgpack.Decoder(Whole)
ENCODE = msgspec.msgpack.Encoder()


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
        self.filter = rule_filter(text, moment)
        """The rule as the database runs it (any rule it could not run is refused here)."""
        self.moment = moment
        encoded = msgspec.json.encode([self.node, moment.isoformat() if self.timed else None])
        self.key = hashlib.sha256(encoded).hexdigest()[:32]
        self.fields = sorted(fields_of(self.node))


class Job:
    """One rule being counted, or asked for lately, for one user: what is known of it."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.entries: dict[int, Entry] = {}
        self.whole: Whole | None = None
        self.versions: dict[int, int] = {}
        self.top = 0
        self._digests: tuple[dict[int, int], dict[int, str]] = ({}, {})
        self.asked = time.monotonic()
        self.moved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Resolved when the worker has looked at it again (with the error that stopped
        counting, if one did); then replaced."""

    def digest(self, below: int) -> str:
        """``digest(versions, below)`` of the versions read last (kept until they are
        read again: a waiter asks for it on every look)."""
        versions, made = self._digests
        if versions is not self.versions:
            versions, made = self._digests = (self.versions, {})
        if below not in made:
            made[below] = digest(versions, below)
        return made[below]

    def whole_count(self, now: float) -> Whole | None:
        """The count of the slices under its ``below`` at once, while it is current."""
        whole = self.whole
        if whole is None or now - whole.at > TRUSTED_FOR:
            return None
        return whole if whole.versions == self.digest(whole.below) else None

    def cold(self, now: float) -> bool:
        """Nothing of the rule's count is known: neither a current slice nor a count of
        the slices at once that slices have moved on from."""
        return self.whole is None and len(self.stale(now)) == slice_of(self.top) + 1

    def stale(self, now: float) -> list[int]:
        """The slices whose count is not current (none under a current whole count)."""
        whole = self.whole_count(now)
        return [
            k
            for k in range(whole.below if whole else 0, slice_of(self.top) + 1 if self.top else 0)
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
        whole = self.whole_count(now)
        below = whole.below if whole else 0
        fresh = [
            (k, e)
            for k, e in sorted(self.entries.items(), reverse=True)
            if below <= k <= slice_of(self.top) and _fresh(e, self.versions.get(k, 0), now)
        ]
        counted = sum(min(numbers_of(k)[1], self.top + 1) - numbers_of(k)[0] for k, _ in fresh)
        size = sum(e.size for _, e in fresh)
        sample = sample_of(dict(fresh))
        if whole is not None:
            counted += numbers_of(below)[0] - 1
            size += whole.size
            sample = [*sample, *whole.sample][:SAMPLE]
        # A slice standing on ``LAG`` (written to since it was counted) makes the count
        # usable, not complete: its newest rows may be missing.
        lagging = any(e.version != self.versions.get(k, 0) for k, e in fresh)
        complete = not self.top or (counted >= self.top and not lagging)
        return Count(
            size=size,
            complete=complete,
            progress=1.0 if complete else min(round(counted / self.top, 3), 0.999),
            moment=self.rule.moment,
            sample=sample,
        )


def sample_of(entries: dict[int, Entry]) -> list[str]:
    """The sample of these slices' entries, newest first."""
    sample: list[str] = []
    for k in sorted(entries, reverse=True):
        sample += entries[k].sample[: SAMPLE - len(sample)]
    return sample


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
        if isinstance(part, EventCount) and part.days is not None:
            return True
    return False


def fields_of(node: Node) -> set[str]:
    """The customer fields (paths) the rule reads."""
    return {p.field for p in _walk(node) if isinstance(p, Compare | InList | Exists | EventCount)}
