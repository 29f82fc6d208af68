"""The inbox's answers when crmd itself is the trouble: a report that cannot be stored
now is answered 451, so that it comes again; one that can is queued once."""

from __future__ import annotations

from bson import ObjectId
from redis.asyncio import Redis

from crmd.app import Crmd
from crmd.bounces.inbox import ACCEPTED, TRY_LATER, Inbox
from crmd.messages import message_id
from crmd.receipts import batch
from crmd.services.children import free_port
from crmd.verp import ReturnPaths
from tests.bounces import samples

PATHS = ReturnPaths.from_secret("a-test-secret-of-32-bytes-or-more!!", "news", "shop.example")


async def a_sent_message(system: Crmd) -> str:
    log = message_id(str(ObjectId()), "c1")
    await system.db.communication_log.insert_one(
        {"_id": log, "userId": "u1", "vendor": "smtp", "recipient": "p1@x.io", "status": "SENT"}
    )
    return log


async def test_a_report_that_cannot_be_queued_now_is_answered_451(system: Crmd):
    log = await a_sent_message(system)
    nowhere = Redis(port=free_port(), socket_connect_timeout=1)
    inbox = Inbox(PATHS, "shop.example", system.db, nowhere, "s", system.metrics)
    to = PATHS.address(log)
    try:
        assert await inbox.receive(samples.postfix_dsn(to, "<x@x.io>"), [to]) == TRY_LATER
    finally:
        await nowhere.aclose()
    assert system.metrics.bounce_mails.labels("queued")._value.get() == 0


async def test_a_report_is_queued_as_one_batch_for_the_smtp_vendors_message(system: Crmd):
    log = await a_sent_message(system)
    stream = system.streams.receipts
    inbox = Inbox(PATHS, "shop.example", system.db, system.redis, stream, system.metrics)
    to = PATHS.address(log)
    assert await inbox.receive(samples.delayed_dsn(to, "<x@x.io>"), [to]) == ACCEPTED
    [(_, fields)] = await system.redis.xrange(stream)
    queued = batch.decode(fields[batch.FIELD])
    assert (queued.vendor, queued.reports_for) == ("bounces", ["smtp"])
    [event] = queued.events
    assert (event.message_id, event.status) == (log, "SOFT_BOUNCED")
    assert event.reason.startswith("4.4.1 ")


async def test_a_forged_verp_token_is_dropped_not_rescued_by_the_message_id(system: Crmd):
    log = await a_sent_message(system)
    stream = system.streams.receipts
    inbox = Inbox(PATHS, "shop.example", system.db, system.redis, stream, system.metrics)
    local, _, domain = PATHS.address(log).partition("@")
    forged = f"{local[:-1]}{'a' if local[-1] != 'a' else 'b'}@{domain}"  # its MAC changed
    assert PATHS.read(forged) is None
    # The attached original's Message-ID is the real message's: alone, it would match.
    raw = samples.arf_report(forged, f"<{log}@shop.example>", recipient="p1@x.io")
    assert await inbox.receive(raw, [forged]) == ACCEPTED
    assert await inbox.receive(raw, ["news@shop.example", forged.upper()]) == ACCEPTED
    assert await system.redis.xlen(stream) == 0
    assert system.metrics.bounce_mails.labels("forged")._value.get() == 2
    assert system.metrics.bounce_mails.labels("queued")._value.get() == 0
    # Another local part's "+" is no token of ours: its Message-ID is still tried.
    other = f"postmaster+{local.partition('+')[2]}x@{domain}"
    assert await inbox.receive(raw, [other]) == ACCEPTED
    assert system.metrics.bounce_mails.labels("queued")._value.get() == 1


async def test_a_report_by_message_id_names_its_message_never_the_address_it_claims(
    system: Crmd,
):
    log = await a_sent_message(system)
    stream = system.streams.receipts
    inbox = Inbox(PATHS, "shop.example", system.db, system.redis, stream, system.metrics)
    raw = samples.arf_report(
        "news@shop.example", f"<{log}@shop.example>", recipient="victim@elsewhere.example"
    )
    assert await inbox.receive(raw, ["news@shop.example"]) == ACCEPTED
    [(_, fields)] = await system.redis.xrange(stream)
    assert b"victim" not in fields[batch.FIELD]  # no address travels with the event
    [event] = batch.decode(fields[batch.FIELD]).events
    assert (event.message_id, event.status) == (log, "COMPLAINED")
