"""``crmd dead-letters list|show|replay|drop``: an operator's hands on the dead letters.

The formatting is pure (letters in, lines out); ``run`` connects to Redis (the running
crmd's embedded one, when the config says ``embedded``) and acts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import msgspec
from redis.asyncio import Redis

from crmd.config import Config
from crmd.services.connect import connect_redis
from crmd.services.embedded import attach_services
from crmd.streams import StreamNames
from crmd.streams.dead import (
    KINDS,
    DeadLetter,
    DeadLetterError,
    Describers,
    UnknownDeadLetter,
    checked_ids,
    drop,
    get_letters,
    list_letters,
    replay,
    stream_names,
)
from crmd.streams.describe import Payload
from crmd.streams.worker import dead_letter_stream, parse_id

ACTIONS = ("list", "show", "replay", "drop")
ERROR_WIDTH = 60
MAX_LIMIT = 10_000
AT_ONCE = 100
"""Dead letters replayed or dropped per transaction with ``--all``."""


class UsageError(Exception):
    """Arguments that do not make a command (exit 2)."""


class Request(msgspec.Struct, frozen=True):
    action: str
    ids: list[str]
    kind: str | None
    every: bool
    limit: int
    oldest_first: bool = False


def check_request(request: Request) -> None:
    """The combinations the parser cannot refuse by itself."""
    if not 1 <= request.limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIMIT}, not {request.limit}")
    if request.action == "list" and request.ids:
        raise UsageError("list takes no ids (use show)")
    if request.action == "show" and not request.ids:
        raise UsageError("show needs the ids of the dead letters to show")
    if request.action in ("replay", "drop"):
        if request.every and request.ids:
            raise UsageError(f"{request.action}: give ids or --all, not both")
        if request.every and request.kind is None:
            raise UsageError(f"{request.action} --all needs --stream ingest|dispatch|receipts")
        if not request.every and not request.ids:
            raise UsageError(f"{request.action} needs ids, or --all with --stream")


def age(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cut(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def table(letters: Sequence[tuple[str, DeadLetter]], now: datetime) -> list[str]:
    """One line per (kind, letter): id, stream, age, deliveries, error."""
    if not letters:
        return ["no dead letters"]
    rows = [("ID", "STREAM", "AGE", "DELIVERIES", "ERROR")] + [
        (
            letter.id,
            kind,
            age(letter.dead_at, now),
            str(letter.deliveries),
            cut(plain(letter.error), ERROR_WIDTH),
        )
        for kind, letter in letters
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)), row[4]])
        for row in rows
    ]


def plain(text: str) -> str:
    """Text as it may reach a terminal: control characters (an escape sequence in a
    hostile entry) written out as escapes."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def details(kind: str, letter: DeadLetter, payload: Payload, now: datetime) -> list[str]:
    """Everything about one dead letter, ``payload`` being what its entry says."""
    source = letter.source_id or "(unknown)"
    fields = ", ".join(
        f"{plain(k.decode(errors='replace'))} ({len(v)} bytes)" for k, v in letter.fields.items()
    )
    since = f"{letter.dead_at.isoformat(timespec='seconds')} ({age(letter.dead_at, now)} ago)"
    return [
        f"dead letter {letter.id} ({kind})",
        f"  source:     {letter.stream} {plain(source)}",
        f"  group:      {plain(letter.group) or '(unknown)'}",
        f"  deliveries: {letter.deliveries}",
        f"  dead since: {since}",
        f"  error:      {plain(letter.error) or '(none given)'}",
        f"  payload:    {payload.kind}: {plain(payload.summary)}",
        f"  owner:      {payload.user or '(names no tenant)'}",
        f"  fields:     {fields or '(none)'}",
    ]


async def run(
    config: Config, request: Request, describers: Describers, out: TextIO | None = None
) -> int:
    """Connect to Redis, act, print; the exit code. ``describers``: each stream's, from
    the composition root (``crmd.app.dead_letter_describers``). DeadLetterError is the
    caller's to report."""
    check_request(request)
    async with attach_services(
        "", config.redis.url, Path(config.embedded.data_dir), config.embedded.start_timeout
    ) as urls:
        redis = await connect_redis(
            urls.redis, config.redis.socket_timeout, config.redis.connect_timeout
        )
        try:
            names = stream_names(StreamNames.for_prefix(config.redis.stream_prefix))
            return await act(redis, names, request, out or sys.stdout, describers)
        finally:
            await redis.aclose()


async def act(
    redis: Redis,
    names: dict[str, str],
    request: Request,
    out: TextIO,
    describers: Describers,
) -> int:
    now = datetime.now(UTC)
    kinds = [request.kind] if request.kind else list(KINDS)
    if request.action == "list":
        limit = None if request.every else request.limit
        found = [
            (kind, letter)
            for kind in kinds
            for letter in await list_letters(
                redis, names[kind], limit, newest_first=not request.oldest_first
            )
        ]
        found.sort(key=lambda pair: parse_id(pair[1].id), reverse=not request.oldest_first)
        print("\n".join(table(found[:limit], now)), file=out)
        return 0
    located = await locate(redis, names, kinds, request)
    for kind, ids in located.items():
        stream = names[kind]
        for start in range(0, len(ids), AT_ONCE):
            batch = ids[start : start + AT_ONCE]
            if request.action == "show":
                for letter in await get_letters(redis, stream, batch):
                    print(
                        "\n".join(details(kind, letter, letter.payload(describers), now)), file=out
                    )
            elif request.action == "replay":
                for dead_id, new_id in await replay(redis, stream, batch):
                    print(f"replayed {kind} {dead_id} onto {stream} as {new_id}", file=out)
            else:
                for letter in await drop(redis, stream, batch):
                    print(
                        f"dropped {kind} {letter.id} ({letter.payload(describers).kind})", file=out
                    )
    if request.every and not any(located.values()):
        print(f"no dead letters in {dead_letter_stream(names[kinds[0]])}", file=out)
    return 0


async def locate(
    redis: Redis, names: dict[str, str], kinds: list[str], request: Request
) -> dict[str, list[str]]:
    """The ids to act on, by stream: every letter of the stream with ``--all``, else
    each given id in the one stream that has it (an id in none, or in several without
    ``--stream``, is a DeadLetterError)."""
    if request.every:
        return {
            kind: [
                letter.id
                for letter in await list_letters(redis, names[kind], None, newest_first=False)
            ]
            for kind in kinds
        }
    located: dict[str, list[str]] = {}
    for entry_id in checked_ids(request.ids):
        holders = []
        for kind in kinds:
            try:
                await get_letters(redis, names[kind], [entry_id])
            except UnknownDeadLetter:
                continue
            holders.append(kind)
        if not holders:
            where = dead_letter_stream(names[request.kind]) if request.kind else "any stream"
            raise DeadLetterError(f"no dead letter {entry_id} in {where}")
        if len(holders) > 1:
            both = " and ".join(holders)
            raise DeadLetterError(f"{entry_id} is a dead letter of {both}: give --stream")
        located.setdefault(holders[0], []).append(entry_id)
    return located
