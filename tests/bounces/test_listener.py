"""The bounces listener end to end: a campaign sent through the smtp vendor to a real
relay, then bounces and complaints mailed back to crmd's own listener, applied by the
receipts actor to the messages' logs and to the suppression list."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crmd.bounces import actor
from crmd.bounces.actor import MAX_SESSIONS, MAX_SESSIONS_PER_PEER
from tests.bounces import samples
from tests.bounces.conftest import Bounces

PLAIN = "news@shop.example"
"""The smtp vendor's own sender: mail to it reaches the listener (the bounce domain is
the from address's), but names no message by itself."""


async def test_a_bounce_a_complaint_and_a_report_by_message_id(bounces: Bounces):
    campaign = await bounces.send_campaign()
    logs = await bounces.logs(campaign)
    for to, log in logs.items():  # each message went with its own envelope sender
        assert bounces.relay.envelopes[to] == bounces.paths.address(log["_id"])
        assert bounces.relay.envelopes[to].startswith("news+")
        assert bounces.relay.envelopes[to].endswith("@shop.example")
    verp = bounces.relay.envelopes

    header = logs["p1@x.io"]["vendorMessageId"]
    assert await bounces.mail(samples.postfix_dsn(verp["p1@x.io"], header), verp["p1@x.io"]) == (
        250,
        "2.0.0 OK",
    )
    arf = samples.arf_report(verp["p2@x.io"], logs["p2@x.io"]["vendorMessageId"], "p2@x.io")
    assert (await bounces.mail(arf, verp["p2@x.io"]))[0] == 250
    # To the plain sender: only the attached original's Message-ID names the message.
    exchange = samples.exchange_dsn(PLAIN, logs["p3@x.io"]["vendorMessageId"])
    assert (await bounces.mail(exchange, PLAIN))[0] == 250

    async def applied() -> dict[str, Any]:
        now = await bounces.logs(campaign)
        statuses = {to: now[to]["status"] for to in ("p1@x.io", "p2@x.io", "p3@x.io")}
        done = "SENT" not in statuses.values() and len(await bounces.suppressed()) == 3
        return now if done else {}

    now = await bounces.until(applied)
    assert now["p1@x.io"]["status"] == "BOUNCED"
    assert now["p1@x.io"]["reason"].startswith("5.1.1 550 5.1.1")
    assert now["p2@x.io"]["status"] == "COMPLAINED"
    assert now["p3@x.io"]["status"] == "BOUNCED" and "5.1.10" in now["p3@x.io"]["reason"]
    assert {to: now[to]["status"] for to in ("p0@x.io", "p4@x.io", "p5@x.io")} == dict.fromkeys(
        ("p0@x.io", "p4@x.io", "p5@x.io"), "SENT"
    )
    listed = await bounces.suppressed()
    assert sorted(listed) == ["p1@x.io", "p2@x.io", "p3@x.io"]
    assert (listed["p2@x.io"]["source"], listed["p2@x.io"]["reason"]) == ("complaint", "complaint")
    assert listed["p1@x.io"]["source"] == listed["p3@x.io"]["source"] == "bounce"
    assert bounces.dropped("queued") == 3

    # The same DSN mailed again is a duplicate: nothing moves.
    answer = await bounces.mail(samples.postfix_dsn(verp["p1@x.io"], header), verp["p1@x.io"])
    assert answer[0] == 250
    await bounces.until(lambda: _true(bounces.dropped("queued") == 4))
    again = await bounces.logs(campaign)
    assert again["p1@x.io"]["times"] == now["p1@x.io"]["times"]

    # The next campaign skips all three.
    second = await bounces.send_campaign()
    statuses = {to: log["status"] for to, log in (await bounces.logs(second)).items()}
    assert [to for to, s in sorted(statuses.items()) if s == "SUPPRESSED"] == [
        "p1@x.io",
        "p2@x.io",
        "p3@x.io",
    ]


async def _true(value: bool) -> bool:
    return value


async def test_three_soft_bounces_suppress_two_do_not(bounces: Bounces):
    for round_ in range(3):
        campaign = await bounces.send_campaign()
        logs = await bounces.logs(campaign)
        late = ["p1@x.io", "p2@x.io"] if round_ < 2 else ["p1@x.io"]
        for to in late:
            header, verp = logs[to]["vendorMessageId"], bounces.relay.envelopes[to]
            raw = samples.delayed_dsn(verp, header, to, report_id=f"<d{round_}{to}>")
            assert (await bounces.mail(raw, bounces.relay.envelopes[to]))[0] == 250

        async def seen(campaign: str = campaign, late: list[str] = late) -> bool:
            now = await bounces.logs(campaign)
            return all("SOFT_BOUNCED" in now[to].get("times", {}) for to in late)

        await bounces.until(seen)
        now = await bounces.logs(campaign)
        assert {now[to]["status"] for to in late} == {"SENT"}  # a soft bounce is not held
    listed = await bounces.until(bounces.suppressed)
    assert list(listed) == ["p1@x.io"]
    assert (listed["p1@x.io"]["source"], listed["p1@x.io"]["reason"]) == (
        "bounce",
        "3 soft bounces within 7 days",
    )
    db = bounces.crmd.crmd.db
    assert await db.soft_bounces.count_documents({"email": "p1@x.io"}) == 3
    assert await db.soft_bounces.count_documents({"email": "p2@x.io"}) == 2


async def test_mail_of_no_use_is_dropped_and_the_listener_goes_on(bounces: Bounces):
    campaign = await bounces.send_campaign()
    logs = await bounces.logs(campaign)
    verp = bounces.relay.envelopes["p1@x.io"]
    header = logs["p1@x.io"]["vendorMessageId"]
    token_at = len("news+") + 3
    forged = verp[:token_at] + ("a" if verp[token_at] != "a" else "b") + verp[token_at + 1 :]
    unknown = header.replace(header[1:6], "fffff")  # crmd's shape, no such message

    mails = [
        (samples.postfix_dsn(forged, "<not-ours@x.io>"), forged, (250, "forged")),
        (samples.postfix_dsn(PLAIN, unknown), PLAIN, (250, "unknown_message")),
        (samples.broken_mime(verp, header), verp, (250, "broken")),
        (samples.out_of_office(verp, header), verp, (250, "not_a_report")),
        ((b"X" * 70 + b"\r\n") * 150_000, verp, (552, "too_large")),  # 10.8 MB
    ]
    for raw, to, (code, outcome) in mails:
        before = bounces.dropped(outcome)
        answer = await bounces.mail(raw, to)
        assert answer[0] == code, (outcome, answer)
        assert bounces.dropped(outcome) == before + 1, outcome
    refused = await bounces.mail(samples.postfix_dsn(PLAIN, header), "someone@elsewhere.example")
    assert refused[0] == 550

    crmd = bounces.crmd.crmd
    assert await crmd.redis.xlen(crmd.streams.receipts) == 0  # nothing queued
    assert await bounces.suppressed() == {}
    assert await bounces.logs(campaign) == logs
    assert await crmd.db.receipt_events.count_documents({}) == 0

    # Still answering, and a good report still lands.
    assert (await bounces.mail(samples.postfix_dsn(verp, header), verp))[0] == 250
    listed = await bounces.until(bounces.suppressed)
    assert list(listed) == ["p1@x.io"]
    assert bounces.dropped("queued") == 1


async def test_too_many_connections_are_turned_away_and_the_rest_served(bounces: Bounces):
    ready = await (await bounces.client.get("/readyz")).json()
    assert ready["actors"]["bounces"] == {
        "status": "ok",
        "restarts": 0,
        "detail": f"listening on 127.0.0.1:{bounces.port}",
    }
    opened = []
    for i in range(MAX_SESSIONS):  # from 10 peers, each within its share
        peer = f"127.0.0.{2 + i // MAX_SESSIONS_PER_PEER}"
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", bounces.port, local_addr=(peer, 0)
        )
        assert (await reader.readline()).startswith(b"220 ")
        opened.append(writer)
    reader, writer = await asyncio.open_connection("127.0.0.1", bounces.port)
    assert (await reader.readline()) == actor.BUSY
    assert await reader.read() == b""  # and closed
    writer.close()
    opened.pop().close()
    await asyncio.sleep(0.2)
    assert (await bounces.mail(samples.out_of_office(PLAIN, "<x@x.io>"), PLAIN))[0] == 250
    for writer in opened:
        writer.close()
    assert bounces.dropped("not_a_report") == 1


def test_a_new_connection_is_turned_away_past_the_whole_or_its_peers_share():
    peers = ["192.0.2.1"] * MAX_SESSIONS_PER_PEER + ["192.0.2.2"]
    assert actor.turned_away(peers, "192.0.2.1") == actor.PEER_BUSY
    assert actor.turned_away(peers, "192.0.2.2") is None
    assert actor.turned_away(peers, "2001:db8::1") is None
    full = [f"198.51.100.{i}" for i in range(MAX_SESSIONS)]
    assert actor.turned_away(full, "192.0.2.9") == actor.BUSY


async def test_one_peer_is_held_to_its_share_and_another_still_served(bounces: Bounces):
    held = []
    for _ in range(MAX_SESSIONS_PER_PEER):  # idle: a greeting read, nothing said
        reader, writer = await asyncio.open_connection("127.0.0.1", bounces.port)
        assert (await reader.readline()).startswith(b"220 ")
        held.append(writer)
    reader, writer = await asyncio.open_connection("127.0.0.1", bounces.port)
    assert await reader.readline() == actor.PEER_BUSY
    assert await reader.read() == b""  # and closed
    writer.close()
    # Another peer is served all the same, to the end of its mail.
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", bounces.port, local_addr=("127.0.0.2", 0)
    )
    assert (await reader.readline()).startswith(b"220 ")
    writer.write(b"QUIT\r\n")
    assert (await reader.readline()).startswith(b"221 ")
    writer.close()
    held.pop().close()
    await asyncio.sleep(0.2)
    assert (await bounces.mail(samples.out_of_office(PLAIN, "<x@x.io>"), PLAIN))[0] == 250
    for writer in held:
        writer.close()
    assert bounces.dropped("not_a_report") == 1


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """What the listener says before it closes the connection, within ``seconds``."""
    said = b""
    async with asyncio.timeout(seconds):
        while chunk := await reader.read(1024):
            said += chunk
    return said


async def test_a_session_is_closed_at_its_deadline_however_busy(
    bounces: Bounces, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(actor, "SESSION_DEADLINE", 1.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", bounces.port)
    assert (await reader.readline()).startswith(b"220 ")

    async def keep_busy() -> None:  # a command every 0.2 s: never idle
        while True:
            writer.write(b"NOOP\r\n")
            await asyncio.sleep(0.2)

    busy = asyncio.create_task(keep_busy())
    try:
        said = await _closed_within(reader, 10)
    finally:
        busy.cancel()
        writer.close()
    # Served all along (never idle for the 60 s idle limit), then cut at the deadline.
    assert said.count(b"250 ") >= 4
    assert said.endswith(actor.TOO_LONG)


async def test_a_mail_not_sent_within_the_data_deadline_is_cut(
    bounces: Bounces, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(actor, "DATA_DEADLINE", 1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", bounces.port)
    assert (await reader.readline()).startswith(b"220 ")
    for command in (b"HELO mx.x.io", b"MAIL FROM:<>", f"RCPT TO:<{PLAIN}>".encode(), b"DATA"):
        writer.write(command + b"\r\n")
        answer = await reader.readline()
        assert answer[:1] in (b"2", b"3"), (command, answer)
    assert answer.startswith(b"354 ")
    writer.write(b"Subject: slow\r\n\r\n")  # and the rest never comes
    said = await _closed_within(reader, 10)
    writer.close()
    assert said == actor.TOO_LONG
    assert await bounces.crmd.crmd.redis.xlen(bounces.crmd.crmd.streams.receipts) == 0


async def test_a_complaint_by_message_id_suppresses_that_message_alone(bounces: Bounces):
    campaign = await bounces.send_campaign()
    logs = await bounces.logs(campaign)
    # To the plain address, the complaint's attached copy claiming another recipient:
    # whoever holds p1's message can report p1's message, and nothing else.
    arf = samples.arf_report(PLAIN, logs["p1@x.io"]["vendorMessageId"], recipient="p4@x.io")
    assert (await bounces.mail(arf, PLAIN))[0] == 250
    listed = await bounces.until(bounces.suppressed)
    assert list(listed) == ["p1@x.io"]
    now = await bounces.logs(campaign)
    assert (now["p1@x.io"]["status"], now["p4@x.io"]["status"]) == ("COMPLAINED", "SENT")
