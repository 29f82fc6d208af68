"""Dead letters: the entries a stream worker gave up on, to read, replay or drop.

The worker moves an entry that failed ``max_deliveries`` times to ``<stream>:dead``
with its fields as they were plus ``_dead_source_id``, ``_dead_group``,
``_dead_deliveries`` and ``_dead_error``. Here they are read back (``DeadLetter``), put
back onto their stream (``replay``) or deleted (``drop``). Replay and drop WATCH the
dead-letter stream, check every id is there, and then add and delete in one MULTI: an
entry is never lost (deleted but not added) nor duplicated (replayed twice by two
operators at once), and an unknown id changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import WatchError

from crmd.streams import StreamNames, text_of
from crmd.streams.describe import Describer, Payload, describe
from crmd.streams.worker import dead_letter_stream, parse_id

KINDS = StreamNames.__struct_fields__
"""The streams by the short names the CLI and the API use."""
OWNED_KINDS = ("ingest", "dispatch")
"""The streams whose entries name their tenant (receipts do not: see ``Payload.user``)."""
MAX_SCAN = 2_000
"""Dead letters read per stream to find a tenant's own: a page costs this at most."""
PAGE = 200
ATTEMPTS = 10
DEAD_FIELDS = (b"_dead_source_id", b"_dead_group", b"_dead_deliveries", b"_dead_error")
Describers = Mapping[bytes, Describer]


class DeadLetterError(Exception):
    """A dead letter that cannot be acted on, said plainly (a bad or unknown id)."""


class UnknownDeadLetter(DeadLetterError):
    def __init__(self, stream: str, ids: Sequence[str]) -> None:
        super().__init__(f"no dead letter {', '.join(ids)} in {dead_letter_stream(stream)}")
        self.stream, self.ids = stream, list(ids)


class DeadLetter(msgspec.Struct, frozen=True):
    id: str
    """Its id in the dead-letter stream: when it was given up on."""
    stream: str
    """The stream it came from, and goes back to on replay."""
    source_id: str
    group: str
    deliveries: int
    error: str
    fields: dict[bytes, bytes]
    """The entry as it was, without the ``_dead_*`` fields: what a replay adds back."""

    @property
    def dead_at(self) -> datetime:
        return datetime.fromtimestamp(parse_id(self.id)[0] / 1000, UTC)

    def payload(self, describers: Describers) -> Payload:
        """What the entry says, by its stream's describer (``crmd.streams.describe``)."""
        return describe(self.fields, describers)


def stream_names(names: StreamNames) -> dict[str, str]:
    """Each short name's stream under the configured prefix."""
    return msgspec.structs.asdict(names)


def read_letter(stream: str, entry_id: Any, raw: Mapping[bytes, bytes]) -> DeadLetter:
    """A dead letter from its XRANGE reply; missing ``_dead_*`` fields read as empty."""

    def text(name: bytes) -> str:
        return raw.get(name, b"").decode(errors="replace")

    deliveries = text(b"_dead_deliveries")
    return DeadLetter(
        id=text_of(entry_id),
        stream=stream,
        source_id=text(b"_dead_source_id"),
        group=text(b"_dead_group"),
        deliveries=int(deliveries) if deliveries.isdigit() else 0,
        error=text(b"_dead_error"),
        fields={k: v for k, v in raw.items() if k not in DEAD_FIELDS},
    )


MAX_ID_PART = 2**64 - 1


def checked_ids(ids: Sequence[str]) -> list[str]:
    """The ids without repeats, each a whole stream entry id (``1718000000000-0``: both
    parts, so that one id names one letter, each within Redis's 64 bits)."""
    unique: dict[str, None] = {}
    for entry_id in ids:
        ms, dash, seq = entry_id.partition("-")
        whole = dash and all(p.isascii() and p.isdigit() and len(p) <= 20 for p in (ms, seq))
        if not whole or max(int(ms), int(seq)) > MAX_ID_PART:
            raise DeadLetterError(f"{entry_id[:40]!r} is not a stream entry id (1718000000000-0)")
        unique[f"{int(ms)}-{int(seq)}"] = None
    return list(unique)


async def list_letters(
    redis: Redis, stream: str, limit: int | None, *, newest_first: bool = True
) -> list[DeadLetter]:
    """The stream's dead letters, newest (or oldest) first; all of them when ``limit``
    is None."""
    found: list[DeadLetter] = []
    bound = "+" if newest_first else "-"
    while limit is None or len(found) < limit:
        count = PAGE if limit is None else min(PAGE, limit - len(found))
        page = await _page(redis, stream, bound, count, newest_first)
        found += [read_letter(stream, i, f) for i, f in page]
        if len(page) < count:
            break
        bound = "(" + found[-1].id  # exclusive: Redis 6.2 and later
    return found


async def _page(
    redis: Any, stream: str, bound: str, count: int, newest_first: bool = True
) -> list[tuple[Any, dict[bytes, bytes]]]:
    """One XREVRANGE (or XRANGE) of the dead letters from ``bound`` on."""
    dead = dead_letter_stream(stream)
    if newest_first:
        reply = await redis.xrevrange(dead, max=bound, min="-", count=count)
    else:
        reply = await redis.xrange(dead, min=bound, max="+", count=count)
    return [(entry_id, fields or {}) for entry_id, fields in reply or []]


async def get_letters(redis: Redis, stream: str, ids: Sequence[str]) -> list[DeadLetter]:
    """The dead letters with these ids, in that order; UnknownDeadLetter names the ids
    that are not there."""
    return await _read_each(redis, stream, checked_ids(ids))


async def _read_each(redis: Any, stream: str, ids: Sequence[str]) -> list[DeadLetter]:
    dead, found, missing = dead_letter_stream(stream), [], []
    for entry_id in ids:
        reply = await redis.xrange(dead, min=entry_id, max=entry_id)
        if reply:
            found.append(read_letter(stream, *reply[0]))
        else:
            missing.append(entry_id)
    if missing:
        raise UnknownDeadLetter(stream, missing)
    return found


async def replay(redis: Redis, stream: str, ids: Sequence[str]) -> list[tuple[str, str]]:
    """Put the dead letters back onto their stream (new ids, original fields) and
    delete them, all in one transaction; returns (dead letter id, new entry id) pairs.
    Any unknown id raises UnknownDeadLetter and nothing is replayed."""

    def queue(pipe: Any, letters: list[DeadLetter]) -> None:
        for letter in letters:
            if not letter.fields:  # XADD needs a field; the transaction is dropped
                raise DeadLetterError(f"dead letter {letter.id} has nothing to replay: drop it")
            pipe.xadd(stream, letter.fields)

    replies = await _in_one_transaction(redis, stream, checked_ids(ids), queue)
    return [(letter.id, text_of(new_id)) for letter, new_id in replies]


async def drop(redis: Redis, stream: str, ids: Sequence[str]) -> list[DeadLetter]:
    """Delete these dead letters; returns them. Any unknown id raises UnknownDeadLetter
    and nothing is deleted."""
    replies = await _in_one_transaction(redis, stream, checked_ids(ids), lambda p, ls: None)
    return [letter for letter, _ in replies]


async def _in_one_transaction(
    redis: Redis, stream: str, ids: list[str], queue: Callable[[Any, list[DeadLetter]], None]
) -> list[tuple[DeadLetter, Any]]:
    """Read the letters under WATCH, then ``queue`` commands and delete them in MULTI;
    returns each letter with its queued command's reply. Retried if the dead-letter
    stream changed in between (a worker adding a letter, another operator)."""
    dead = dead_letter_stream(stream)
    if not ids:
        return []
    for _ in range(ATTEMPTS):
        pipe: Any
        async with redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(dead)
                letters = await _read_each(pipe, stream, ids)
                pipe.multi()
                queue(pipe, letters)
                pipe.xdel(dead, *ids)
                replies = await pipe.execute()
            except WatchError:
                continue
        queued = replies[:-1] or [None] * len(letters)
        return list(zip(letters, queued, strict=True))
    raise DeadLetterError(f"{dead} kept changing during {ATTEMPTS} tries: try again")


class Owned(msgspec.Struct, frozen=True):
    letters: list[DeadLetter]
    complete: bool
    """False when a stream had more dead letters than one read looks at (MAX_SCAN):
    older ones of the tenant's may exist beyond them."""


@dataclass(frozen=True)
class DeadLetters:
    """The dead letters of crmd's streams as a tenant may see them: only those whose
    entry names that tenant."""

    redis: Redis
    streams: StreamNames
    describers: Describers
    """Each stream's describer, from the composition root: whose entry a letter is."""

    def names(self) -> dict[str, str]:
        return stream_names(self.streams)

    async def of_user(self, user: str, kind: str | None, limit: int) -> Owned:
        """The user's newest ``limit`` dead letters, of one stream or of all."""
        names = self.names()
        kinds = [k for k in OWNED_KINDS if kind in (None, k)]
        found: list[DeadLetter] = []
        complete = True
        for name in kinds:
            letters, whole = await _owned(self.redis, names[name], user, limit, self.describers)
            found += letters
            complete &= whole
        found.sort(key=lambda letter: parse_id(letter.id), reverse=True)
        return Owned(found[:limit], complete)


async def _owned(
    redis: Redis, stream: str, user: str, limit: int, describers: Describers
) -> tuple[list[DeadLetter], bool]:
    """Up to ``limit`` of the user's dead letters, newest first, among the newest
    MAX_SCAN of the stream; and whether the scan saw the whole stream."""
    found: list[DeadLetter] = []
    bound, seen = "+", 0
    while len(found) < limit and seen < MAX_SCAN:
        count = min(PAGE, MAX_SCAN - seen)
        page = await _page(redis, stream, bound, count)
        seen += len(page)
        letters = [read_letter(stream, i, f) for i, f in page]
        found += [letter for letter in letters if letter.payload(describers).user == user]
        if len(page) < count:
            return found[:limit], True
        bound = "(" + letters[-1].id
    return found[:limit], len(found) >= limit
