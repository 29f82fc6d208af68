"""Dead letters an operator can act on: listed, shown decoded, replayed onto their stream
(and consumed again), dropped; through the functions, the ``crmd dead-letters`` command
and, scoped to the tenant, the API."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from bson import ObjectId

from crmd.app import Crmd, dead_letter_describers
from crmd.campaigns import jobs
from crmd.config import Config
from crmd.ingest import chunks
from crmd.ingest.rows import CustomerRow
from crmd.plugins.vendor import ReceiptEvent
from crmd.receipts import batch
from crmd.streams import GROUP, StreamNames
from crmd.streams.command import details
from crmd.streams.dead import (
    DeadLetterError,
    UnknownDeadLetter,
    checked_ids,
    drop,
    get_letters,
    list_letters,
    read_letter,
    replay,
)
from crmd.streams.describe import MAX_SUMMARY, describe
from crmd.streams.worker import Entry, StreamWorker, dead_letter_stream

pytestmark = pytest.mark.slow  # runs crmd as a process

# -- making dead letters -----------------------------------------------------------------


def job(user: str, campaign: str = "c1") -> dict[bytes, bytes]:
    return {jobs.FIELD: jobs.encode(jobs.DispatchJob("send", campaign, user, chunk="k7"))}


def chunk(user: str, emails: Sequence[str] = ("a@x.io", "b@x.io")) -> dict[bytes, bytes]:
    rows = [CustomerRow(line=i + 2, name=f"N{i}", email=e) for i, e in enumerate(emails)]
    made = chunks.IngestChunk(str(ObjectId()), user, "customers", 0, 1, customers=rows)
    return {chunks.FIELD: chunks.encode(made)}


def receipts() -> dict[bytes, bytes]:
    at = datetime.now(UTC)
    events = [ReceiptEvent("SENT", at, "e1", "m1"), ReceiptEvent("FAILED", at, "e2", "m2")]
    return {batch.FIELD: batch.encode(batch.ReceiptBatch("dummy", events))}


async def plant(
    redis: Any,
    stream: str,
    fields: dict[bytes, bytes],
    error: str = "ValueError: boom",
    entry_id: str = "*",
) -> str:
    """A dead letter as the worker writes one (``test_the_workers_letter_reads_back``
    checks that this is so)."""
    letter = {
        **fields,
        b"_dead_source_id": b"1700000000000-0",
        b"_dead_group": GROUP.encode(),
        b"_dead_deliveries": b"5",
        b"_dead_error": error.encode(),
    }
    return (await redis.xadd(dead_letter_stream(stream), letter, id=entry_id)).decode()


async def kill_through_worker(redis: Any, config: Config, stream: str, fields: Any) -> str:
    """Add an entry and let a real worker, whose handler always fails, give up on it."""
    source_id = (await redis.xadd(stream, fields)).decode()

    async def failing(entries: Sequence[Entry]) -> None:
        raise RuntimeError("cannot apply this entry")

    settings = msgspec.structs.replace(config.streams, max_deliveries=1, batch_size=1)
    worker = StreamWorker(redis, stream, GROUP, "poisoned", failing, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(10):
            while not await redis.xlen(dead_letter_stream(stream)):
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    return source_id


DESCRIBERS = dead_letter_describers()
"""Each stream's describer, as the composition root registers them."""


def names(config: Config) -> StreamNames:
    return StreamNames.for_prefix(config.redis.stream_prefix)


# -- reading -----------------------------------------------------------------------------


async def test_the_workers_letter_reads_back_decoded(redis: Any, config: Config):
    stream = names(config).dispatch
    source_id = await kill_through_worker(redis, config, stream, job("alice"))
    [letter] = await list_letters(redis, stream, 10)
    assert (letter.stream, letter.source_id, letter.group) == (stream, source_id, GROUP)
    assert (letter.deliveries, letter.error) == (1, "RuntimeError: cannot apply this entry")
    assert letter.fields == job("alice")  # without the _dead_* fields
    payload = letter.payload(DESCRIBERS)
    assert (payload.kind, payload.user) == ("dispatch job", "alice")
    assert payload.summary == "send campaign c1, planned chunk k7"
    assert await get_letters(redis, stream, [letter.id]) == [letter]


async def test_list_is_newest_or_oldest_first_up_to_the_limit(redis: Any, config: Config):
    stream = names(config).ingest
    ids = [await plant(redis, stream, chunk("u1"), error=f"E{n}") for n in range(5)]
    newest = await list_letters(redis, stream, 3)
    oldest = await list_letters(redis, stream, 3, newest_first=False)
    assert [letter.id for letter in newest] == ids[::-1][:3]
    assert [letter.id for letter in oldest] == ids[:3]
    assert [letter.id for letter in await list_letters(redis, stream, None)] == ids[::-1]


def test_each_streams_entries_are_described_with_their_owner():
    ingest = describe(chunk("u1"), DESCRIBERS)
    assert (ingest.kind, ingest.user) == ("ingest chunk", "u1")
    assert "customers chunk 0 of upload" in ingest.summary and "2 rows, lines 2-3" in ingest.summary
    receipt = describe(receipts(), DESCRIBERS)
    assert (receipt.kind, receipt.user) == ("receipts", None)  # no tenant in a callback
    assert receipt.summary == "2 receipt events from vendor dummy (FAILED 1, SENT 1)"


def test_unknown_or_broken_fields_are_shown_bounded():
    broken = describe({b"job": b"\xc1not msgpack", b"n": b"4"}, DESCRIBERS)
    assert broken.kind == "unknown" and broken.user is None
    assert broken.summary.startswith("job does not decode (")
    assert "n='4'" in broken.summary
    huge = describe(
        {b"blob": b"\x00" * 100_000, **{f"f{i}".encode(): b"x" * 50 for i in range(50)}},
        DESCRIBERS,
    )
    assert len(huge.summary) == MAX_SUMMARY and huge.summary.endswith("…")


# -- replay and drop -----------------------------------------------------------------


async def test_a_replayed_chunk_is_stored_by_the_ingest_actor(
    system: Crmd, redis: Any, config: Config
):
    stream = system.streams.ingest
    await kill_through_worker(redis, config, stream, chunk("u1", ["r1@x.io", "r2@x.io"]))
    supervisor = system.start(("ingest",))
    assert await supervisor.wait_healthy(10)
    customers = system.db.customers
    [letter] = await list_letters(redis, stream, 10)
    assert await customers.count_documents({"userId": "u1"}) == 0  # acked when it died
    [(dead_id, new_id)] = await replay(redis, stream, [letter.id])
    assert dead_id == letter.id and new_id != letter.source_id
    async with asyncio.timeout(20):
        while await customers.count_documents({"userId": "u1"}) < 2:
            await asyncio.sleep(0.05)
    assert sorted(await customers.distinct("email", {"userId": "u1"})) == ["r1@x.io", "r2@x.io"]
    assert await redis.xlen(dead_letter_stream(stream)) == 0
    [(_, fields)] = await redis.xrange(stream, min=new_id, max=new_id)
    assert fields == letter.fields


async def test_unknown_ids_are_an_error_and_change_nothing(redis: Any, config: Config):
    stream = names(config).dispatch
    known = await plant(redis, stream, job("alice"))
    for act in (replay, drop):
        with pytest.raises(UnknownDeadLetter) as raised:
            await act(redis, stream, [known, "1-0"])
        assert raised.value.ids == ["1-0"]
        assert "no dead letter 1-0 in" in str(raised.value)
    with pytest.raises(DeadLetterError, match="'nonsense' is not a stream entry id"):
        await replay(redis, stream, ["nonsense"])
    assert [letter.id for letter in await list_letters(redis, stream, 10)] == [known]
    assert await redis.xlen(stream) == 0


async def test_drop_deletes_only_the_given_letters(redis: Any, config: Config):
    stream = names(config).dispatch
    first, second = await plant(redis, stream, job("a")), await plant(redis, stream, job("b"))
    [dropped] = await drop(redis, stream, [first])
    assert dropped.id == first and dropped.payload(DESCRIBERS).user == "a"
    assert [letter.id for letter in await list_letters(redis, stream, 10)] == [second]
    assert await redis.xlen(stream) == 0  # dropping puts nothing back


async def test_two_replays_at_once_put_the_entry_back_once(redis: Any, config: Config):
    stream = names(config).dispatch
    letter = await plant(redis, stream, job("alice"))
    outcomes = await asyncio.gather(
        *(replay(redis, stream, [letter]) for _ in range(4)), return_exceptions=True
    )
    assert sum(isinstance(o, list) for o in outcomes) == 1
    assert sum(isinstance(o, UnknownDeadLetter) for o in outcomes) == 3
    assert await redis.xlen(stream) == 1


# -- the command ---------------------------------------------------------------------


def config_file(tmp_path: Path, config: Config) -> str:
    path = tmp_path / "crmd.toml"
    path.write_text(
        f'[redis]\nurl = "{config.redis.url}"\nstream_prefix = "{config.redis.stream_prefix}"\n'
        "[auth]\ngoogle_login = false\n"
    )
    return str(path)


async def crmd(tmp_path: Path, config: Config, *args: str) -> tuple[int, str, str]:
    """``crmd --config ... dead-letters ARGS`` as a user runs it, in a process of its own
    (it configures logging and runs its own event loop); exit code, stdout, stderr."""
    argv = ["-m", "crmd", "--config", config_file(tmp_path, config), "dead-letters", *args]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("CRMD_")},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_command_lists_shows_replays_and_drops(redis: Any, config: Config, tmp_path: Path):
    streams = names(config)
    long_error = "ValueError: " + "x" * 200
    sent = await plant(redis, streams.dispatch, job("alice"), error=long_error)
    other = await plant(redis, streams.dispatch, job("bob", "c2"))
    chunk_ids = [
        await plant(redis, streams.ingest, chunk("u1"), entry_id=f"1700000000000-{n}")
        for n in range(2)
    ]

    code, out, _ = await crmd(tmp_path, config, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "STREAM", "AGE", "DELIVERIES", "ERROR"]
    assert [line.split()[0] for line in lines[1:]] == [other, sent, *chunk_ids[::-1]]
    _, stream, age, deliveries, *_ = lines[2].split()
    assert (stream, deliveries) == ("dispatch", "5") and age in ("0s", "1s", "2s")
    assert lines[2].endswith("…") and long_error not in out
    assert lines[-1].split()[1:3] == ["ingest", f"{days_since(1_700_000_000)}d"]

    code, out, _ = await crmd(tmp_path, config, "list", "--stream", "dispatch", "--limit", "1")
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == [other]

    code, out, err = await crmd(tmp_path, config, "show", sent)
    assert code == 0, err
    assert f"dead letter {sent} (dispatch)" in out
    assert f"source:     {streams.dispatch} 1700000000000-0" in out
    assert "payload:    dispatch job: send campaign c1, planned chunk k7" in out
    assert "owner:      alice" in out and long_error in out

    code, out, _ = await crmd(tmp_path, config, "replay", sent)
    [(new_id, fields)] = await redis.xrange(streams.dispatch)
    assert code == 0 and out.strip() == (
        f"replayed dispatch {sent} onto {streams.dispatch} as {new_id.decode()}"
    )
    assert fields == job("alice")

    code, out, _ = await crmd(tmp_path, config, "drop", "--all", "--stream", "ingest")
    assert code == 0
    assert out.splitlines() == [f"dropped ingest {i} (ingest chunk)" for i in chunk_ids]
    assert await redis.xlen(dead_letter_stream(streams.ingest)) == 0
    assert [letter.id for letter in await list_letters(redis, streams.dispatch, 10)] == [other]


def days_since(seconds: int) -> int:
    return int((datetime.now(UTC).timestamp() - seconds) // 86_400)


async def test_command_asks_for_the_stream_of_an_id_in_two(
    redis: Any, config: Config, tmp_path: Path
):
    streams = names(config)
    await plant(redis, streams.ingest, chunk("u1"), entry_id="5-0")
    await plant(redis, streams.dispatch, job("alice"), entry_id="5-0")
    code, out, err = await crmd(tmp_path, config, "drop", "5-0")
    assert (code, out) == (1, "")
    assert "5-0 is a dead letter of ingest and dispatch: give --stream" in err
    code, out, _ = await crmd(tmp_path, config, "drop", "--stream", "dispatch", "5-0")
    assert (code, out) == (0, "dropped dispatch 5-0 (dispatch job)\n")
    assert await redis.xlen(dead_letter_stream(streams.ingest)) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["replay", "1-0"], 1, "no dead letter 1-0 in any stream"),
        (["drop", "--stream", "ingest", "1-0"], 1, "no dead letter 1-0 in {ingest}\n"),
        (["show", "nonsense"], 1, "'nonsense' is not a stream entry id"),
        (["replay"], 2, "replay needs ids, or --all with --stream"),
        (["drop", "--all"], 2, "drop --all needs --stream"),
        (["list", "--limit", "0"], 2, "--limit must be between 1 and 10000"),
        (["list", "--stream", "bogus"], 2, "invalid choice: 'bogus'"),
    ],
)
async def test_command_refuses_unknown_ids_and_bad_arguments(
    redis: Any,
    config: Config,
    tmp_path: Path,
    args: list[str],
    code: int,
    message: str,
):
    kept = await plant(redis, names(config).ingest, chunk("u1"))
    exit_code, out, err = await crmd(tmp_path, config, *args)
    assert (exit_code, out) == (code, "")
    assert message.format(ingest=dead_letter_stream(names(config).ingest)) in err
    assert [letter.id for letter in await list_letters(redis, names(config).ingest, 10)] == [kept]


# -- the API -------------------------------------------------------------------------


async def test_api_shows_each_user_only_their_own_letters(
    client: Any, auth: Any, redis: Any, config: Config
):
    streams = names(config)
    me = (await (await client.get("/api/v1/user/me", headers=auth)).json())["user"]["id"]
    mine = [
        await plant(redis, streams.dispatch, job(me)),
        await plant(redis, streams.ingest, chunk(me)),
    ]
    await plant(redis, streams.dispatch, job("someone-else"))
    await plant(redis, streams.receipts, receipts())

    answer = await (await client.get("/api/v1/dead-letters", headers=auth)).json()
    assert answer["complete"] is True
    assert [item["id"] for item in answer["items"]] == mine[::-1]
    first = answer["items"][0]
    assert (first["stream"], first["kind"], first["deliveries"]) == ("ingest", "ingest chunk", 5)
    assert (first["sourceId"], first["error"]) == ("1700000000000-0", "ValueError: boom")
    only = await client.get("/api/v1/dead-letters?stream=dispatch&limit=1", headers=auth)
    assert [item["id"] for item in (await only.json())["items"]] == [mine[0]]

    signed = await client.post("/api/v1/user/dev-login", json={"email": "bob@example.com"})
    bob = {"Authorization": f"Bearer {(await signed.json())['token']}"}
    theirs = await (await client.get("/api/v1/dead-letters", headers=bob)).json()
    assert theirs == {"items": [], "complete": True}


@pytest.mark.parametrize("limit", ["0", "201", "ten", "-1"])
async def test_api_refuses_a_bad_limit_naming_it(client: Any, auth: Any, limit: str):
    response = await client.get(f"/api/v1/dead-letters?limit={limit}", headers=auth)
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["details"]) == ("bad_request", {"field": "limit"})


@pytest.mark.parametrize("stream", ["bogus", "receipts"])
async def test_api_refuses_a_stream_without_owners(client: Any, auth: Any, stream: str):
    response = await client.get(f"/api/v1/dead-letters?stream={stream}", headers=auth)
    assert response.status == 422
    details = (await response.json())["error"]["details"]
    assert details == {"field": "stream", "allowed": ["ingest", "dispatch"]}


@pytest.mark.parametrize(
    "bad",
    ["1718000000000", "1718000000000-", "-0", "1-0-0", "1" * 30 + "-0", "18446744073709551616-0"],
)
def test_an_id_must_be_whole_and_fit_in_64_bits(bad: str):
    """A bare millisecond would name every letter of that millisecond, and two spellings
    of one id would replay it twice."""
    with pytest.raises(DeadLetterError):
        checked_ids([bad])
    assert checked_ids(["0017-0", "17-0", "17-00", "18446744073709551615-1"]) == [
        "17-0",
        "18446744073709551615-1",
    ]


def test_show_writes_control_characters_out():
    letter = read_letter(
        "s",
        b"1-0",
        {b"evil\x1b[31m": b"x", b"_dead_error": b"bad \x1b[2J", b"_dead_group": b"crmd"},
    )
    shown = "\n".join(details("ingest", letter, letter.payload(DESCRIBERS), datetime.now(UTC)))
    assert "\x1b" not in shown and "evil\\x1b[31m" in shown and "bad \\x1b[2J" in shown
