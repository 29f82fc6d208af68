"""A campaign's plan, kept a chunk of recipients at a time (``send_chunks``).

Planning writes one document per chunk: each recipient's message id, place and rendered
message. Sending reads the chunk and writes each recipient's log once, when the vendor
has taken the message (with the vendor's id) or refused it for good: one write per
message. A recipient with no log yet has not been handed over; a chunk is ``done``
once every recipient in it has a log, and its recipients are then dropped from it (the
logs hold them).

Safe to repeat anywhere: a chunk's id is its campaign and its first place, so planning
a stretch again writes nothing new; a log's id is the message id, so a chunk sent again
after a crash skips whoever already has one, and hands the rest over with the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec
from msgspec import UNSET

from crmd.messages import FINAL_RANK, MessageStatus
from crmd.store.documents import Doc, MessageLog, encode
from crmd.store.tenant import TenantStore
from crmd.store.writes import insert_new

CHUNK_BYTES = 4_000_000
"""At most this many bytes of messages in one chunk (a document holds at most 16 MB)."""


def chunk_id(campaign_id: str, first_seq: int) -> str:
    return f"{campaign_id}:{first_seq}"


def cut(entries: list[Doc], size: int) -> Iterable[list[Doc]]:
    """The entries in chunks of at most ``size`` recipients and CHUNK_BYTES of text."""
    chunk: list[Doc] = []
    text = 0
    for entry in entries:
        if chunk and (len(chunk) >= size or text + len(entry["message"]) > CHUNK_BYTES):
            yield chunk
            chunk, text = [], 0
        chunk.append(entry)
        text += len(entry["message"])
    if chunk:
        yield chunk


async def write(
    store: TenantStore,
    campaign_id: str,
    vendor: str,
    entries: list[Doc],
    size: int,
    now: datetime,
) -> list[str]:
    """Store the entries as chunks; returns every chunk's id (those written before
    too: the caller queues them again, and sending skips what is handed over)."""
    docs = [
        {
            "_id": chunk_id(campaign_id, chunk[0]["seq"]),
            "campaignId": campaign_id,
            "vendor": vendor,
            "seq": chunk[0]["seq"],
            "size": len(chunk),
            "entries": chunk,
            "done": False,
            "createdAt": now,
        }
        for chunk in cut(entries, size)
    ]
    if docs:
        await insert_new(store["send_chunks"].insert_many(docs))
    return [d["_id"] for d in docs]


async def read(store: TenantStore, chunk: str) -> Doc | None:
    """The chunk, unless it is done (or gone)."""
    doc = await store["send_chunks"].find_one({"_id": chunk})
    return None if doc is None or doc.get("done") else doc


async def unsent(store: TenantStore, doc: Doc) -> list[Doc]:
    """The chunk's recipients that have no log yet."""
    entries: list[Doc] = doc["entries"]
    have = await store["communication_log"].by_ids(
        [e["_id"] for e in entries], projection={"_id": 1}
    )
    logged = {d["_id"] for d in have}
    return [e for e in entries if e["_id"] not in logged]


async def mark_done(store: TenantStore, chunk: str) -> None:
    await store["send_chunks"].update_one(
        {"_id": chunk}, {"$set": {"done": True}, "$unset": {"entries": ""}}
    )


async def open_chunks(store: TenantStore, campaign_id: str) -> list[str]:
    """The campaign's chunks not done, in plan order."""
    cursor = store["send_chunks"].find(
        {"campaignId": campaign_id, "done": False}, projection={"_id": 1, "seq": 1}
    )
    found = [(d["seq"], d["_id"]) async for d in cursor]
    return [i for _, i in sorted(found)]


async def recipients(store: TenantStore, ids: list[str]) -> int:
    """How many recipients the chunks were planned with."""
    found = await store["send_chunks"].by_ids(ids, projection={"size": 1})
    return sum(int(d["size"]) for d in found)


def new_log(
    entry: Doc,
    campaign_id: str,
    vendor: str,
    status: MessageStatus,
    attempts: int,
    now: datetime,
) -> MessageLog:
    """A recipient's log as it is first written, from its entry in a chunk (``_id``,
    ``seq``, ``customerId``, ``recipient``, ``phone``, ``message``, and ``values`` when
    the subject or the HTML body use some: ``crmd.campaigns.compose``)."""
    return MessageLog(
        id=entry["_id"],
        seq=entry["seq"],
        customerId=entry["customerId"],
        recipient=entry["recipient"],
        phone=entry["phone"],
        message=entry["message"],
        values=entry.get("values") or UNSET,
        variant=entry.get("variant", UNSET),
        campaignId=campaign_id,
        vendor=vendor,
        status=status,
        rank=0,
        round=0,
        attempts=attempts,
        vendorMessageId=None,
        createdAt=now,
        updatedAt=now,
    )


def suppressed_log(
    entry: Doc, campaign_id: str, vendor: str, now: datetime, why: str
) -> MessageLog:
    """The log of a recipient left out because their address is suppressed; ``why``
    is its reason (``suppressions.entries.listed_because``)."""
    log = new_log(entry, campaign_id, vendor, MessageStatus.SUPPRESSED, 0, now)
    return msgspec.structs.replace(log, rank=FINAL_RANK, reason=why)


async def insert_logs(store: TenantStore, logs: list[MessageLog]) -> tuple[int, list[MessageLog]]:
    """Insert new logs; returns how many were new (for the user's tally, which the
    caller adds to) and the logs that existed already (a chunk sent again, a cancel
    that came first)."""
    if not logs:
        return 0, []
    docs = [encode(log) for log in logs]
    there = await insert_new(store["communication_log"].insert_many(docs))
    return len(logs) - len(there), [logs[i] for i in there]


async def cancel_unsent(store: TenantStore, campaign_id: str, now: datetime) -> int:
    """Every recipient of the campaign's open chunks who has no log gets a CANCELLED
    one, and the chunk is done. Returns how many were cancelled."""
    cancelled = 0
    for chunk in await open_chunks(store, campaign_id):
        doc = await read(store, chunk)
        if doc is None:
            continue
        todo = await unsent(store, doc)
        # The rank stays 0: should the vendor have taken one after all (a batch in
        # flight as the cancel came), its receipt still lands.
        logs = [
            new_log(e, campaign_id, doc["vendor"], MessageStatus.CANCELLED, 0, now) for e in todo
        ]
        new, _ = await insert_logs(store, logs)
        await store.add_to_tally("messages", new)
        await mark_done(store, chunk)
        cancelled += new
    return cancelled
