"""Each user's records numbered in the order they arrived, and their tallies.

SecantusDB reads every document a filter matches even when only a page is asked for,
and does not walk a compound index to sort: the newest 50 of 100,000 customers cost
five seconds. A page is instead a range of ``n``, a number each record takes when it is
first stored (1, 2, 3... per user and kind): ``n`` in [lo, hi) reads those documents
and no others. Numbers are reserved a block at a time from a counter; a block a crash
leaves unused is a gap, which a page steps over (``crmd.store.windows``).

The tallies (customers, orders, campaigns, messages and messages by status,
suppressions, segments, uploads) are kept beside the counters so that the dashboard and
the lists read one document instead of counting collections: each write that adds
records adds them to the tally (new customers, orders, segments and uploads in the same
transaction, ``crmd.store.writes.insert_tallied``), a campaign's stats move the messages
by status by what changed, and the clock recounts each tally once a day, which repairs
a count that a crash between two writes missed (or a recount raced).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from crmd.store.documents import Doc

log = structlog.get_logger(__name__)

COUNTERS = "counters"
"""Not a tenant collection: its documents are keyed ``<user>:<kind>``."""
NUMBERED = ("customers", "orders", "campaigns", "segments", "uploads")
TALLIED = ("customers", "orders", "campaigns", "messages", "suppressions", "segments", "uploads")
STORED = "stored"
"""The highest number each kind of record was stored with, in the tally (kept by the
writes that add to it)."""
BY_STATUS = "byStatus"
"""Messages by their log status, in the tally and in each campaign's stats."""
_STATUSES_KNOWN = "statusesCounted"
"""Set on a tally whose messages by status were counted (or started at nothing): one
from before they were kept may have some changes added, but is counted once read."""
RECOUNT_AFTER = timedelta(hours=24)
RECOUNT_BATCH = 5
UPSERT_TRIES = 3


def _key(user: str, kind: str) -> str:
    return f"{user}:{kind}"


async def reserve(db: AsyncDatabase[Doc], user: str, kind: str, count: int) -> int:
    """The first of ``count`` new numbers for ``user``'s ``kind`` (they run on from it)."""
    if count <= 0:
        return 0
    for _ in range(UPSERT_TRIES):
        # Two first reservations at once (two ingest workers) both try to insert the
        # counter: the one that loses answers a duplicate key, or, on SecantusDB,
        # nothing. The counter exists by then: the next try increments it.
        try:
            doc = await db[COUNTERS].find_one_and_update(
                {"_id": _key(user, kind)},
                {"$inc": {"next": count}, "$setOnInsert": {"user": user, "kind": kind}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            continue
        if doc is not None:
            first: int = doc["next"] - count + 1
            return first
    raise RuntimeError(f"the {kind} counter of {user} could not be reserved from")


async def highest(
    db: AsyncDatabase[Doc], user: str, kind: str, session: AsyncClientSession | None = None
) -> int:
    """The last number given out for ``user``'s ``kind`` (0: none yet)."""
    doc = await db[COUNTERS].find_one(
        {"_id": _key(user, kind)}, projection={"next": 1}, session=session
    )
    return int(doc["next"]) if doc else 0


async def add_to_tally(
    db: AsyncDatabase[Doc],
    user: str,
    kind: str,
    count: int,
    session: AsyncClientSession | None = None,
    stored: int = 0,
) -> None:
    """Add ``count`` records to the user's ``kind`` tally (in ``session``'s transaction,
    when given: a conflict then fails the transaction, which is tried again whole).
    ``stored``: the highest number among them, kept as the highest stored so far."""
    if count:
        await _add(db, user, {kind: count}, session, {f"{STORED}.{kind}": stored} if stored else {})


async def add_to_statuses(db: AsyncDatabase[Doc], user: str, change: dict[str, int]) -> None:
    """Move the user's messages-by-status tally by ``change`` (a campaign's stats
    stored anew, less what it stored before)."""
    moved = {f"{BY_STATUS}.{status}": n for status, n in change.items() if n}
    if moved:
        await _add(db, user, moved, None)


async def _add(
    db: AsyncDatabase[Doc],
    user: str,
    increments: dict[str, int],
    session: AsyncClientSession | None,
    highest: dict[str, int] | None = None,
) -> None:
    # The tally is made first, if missing, and only then added to: an upsert that adds
    # is not safe to try again (the embedded server may answer a duplicate key for an
    # upsert it applied, and the try again would count the records twice).
    # A new user's tallies start at nothing, known; users from before tallies were
    # kept are counted when their tallies are first read.
    update: Doc = {"$inc": increments, **({"$max": highest} if highest else {})}
    for _ in range(UPSERT_TRIES):
        done = await db[COUNTERS].update_one({"_id": _key(user, "tally")}, update, session=session)
        if done.matched_count:
            return
        fresh: Doc = {kind: 0 for kind in TALLIED}
        try:
            await db[COUNTERS].insert_one(
                {
                    "_id": _key(user, "tally"),
                    "user": user,
                    "kind": "tally",
                    "countedAt": datetime.now(UTC),
                    _STATUSES_KNOWN: True,
                    BY_STATUS: {},
                    **fresh,
                },
                session=session,
            )
        except DuplicateKeyError:
            if session is not None:
                raise  # the caller's transaction fails with it, as it always did
    raise RuntimeError(f"the tally of {user} could not be added to")


async def highest_and_tally(db: AsyncDatabase[Doc], user: str, kind: str) -> tuple[int, Doc]:
    """The highest number of ``kind`` a record was stored with (else given out), and
    the tallies, in one read (a list page wants both). A page starts from the highest
    stored: numbers an import has taken for a chunk it is still writing hold nothing
    yet, and a page that started above them read past them."""
    found = {
        doc["_id"]: doc
        async for doc in db[COUNTERS].find(
            {"_id": {"$in": [_key(user, kind), _key(user, "tally")]}}
        )
    }
    top = int(found.get(_key(user, kind), {}).get("next", 0))
    tally_doc = found.get(_key(user, "tally")) or {}
    stored = tally_doc.get(STORED, {}).get(kind)
    if stored is not None:
        top = min(top, int(stored))
    return top, _tallied(found.get(_key(user, "tally"))) or await recount(db, user)


async def tally(db: AsyncDatabase[Doc], user: str) -> Doc:
    """The user's tallies (and ``byStatus``, their messages by status); counted now
    when there are none yet (a user from before tallies were kept, or before this kind
    was tallied)."""
    doc = await db[COUNTERS].find_one({"_id": _key(user, "tally")})
    return _tallied(doc) or await recount(db, user)


def _tallied(doc: Doc | None) -> Doc | None:
    """The tallies a stored tally document holds; None when it is incomplete."""
    known = ("countedAt", BY_STATUS, _STATUSES_KNOWN, *TALLIED)
    if doc is None or any(key not in doc for key in known):
        return None
    return {kind: int(doc.get(kind, 0)) for kind in TALLIED} | {
        "countedAt": doc["countedAt"],
        BY_STATUS: {status: int(n) for status, n in doc[BY_STATUS].items() if n},
    }


async def recount(db: AsyncDatabase[Doc], user: str) -> Doc:
    """Count the user's records exactly and store the tallies. Messages by status are
    the sum of what the user's campaigns stored with their stats (the same figures the
    campaigns' changes move the tally by); a campaign from before they were kept is
    counted from its logs once."""
    counted: Doc = {}
    for kind in TALLIED:
        collection = "communication_log" if kind == "messages" else kind
        counted[kind] = await db[collection].count_documents({"userId": user})
    statuses: dict[str, int] = {}
    async for campaign in db.campaigns.find({"userId": user}, projection={BY_STATUS: 1}):
        by_status = campaign.get(BY_STATUS)
        if by_status is None:
            by_status = await _logged_statuses(db, user, str(campaign["_id"]))
            await db.campaigns.update_one(
                {"_id": campaign["_id"], BY_STATUS: {"$exists": False}},
                {"$set": {BY_STATUS: by_status}},
            )
        for status, n in by_status.items():
            statuses[status] = statuses.get(status, 0) + n
    counted["countedAt"] = datetime.now(UTC)
    await db[COUNTERS].update_one(
        {"_id": _key(user, "tally")},
        {
            "$set": {
                **counted,
                BY_STATUS: statuses,
                _STATUSES_KNOWN: True,
                "user": user,
                "kind": "tally",
            }
        },
        upsert=True,
    )
    return counted | {BY_STATUS: {s: n for s, n in statuses.items() if n}}


async def _logged_statuses(db: AsyncDatabase[Doc], user: str, campaign: str) -> dict[str, int]:
    cursor = await db.communication_log.aggregate(
        [
            {"$match": {"userId": user, "campaignId": campaign}},
            {"$group": {"_id": "$status", "n": {"$sum": 1}}},
        ]
    )
    return {doc["_id"]: doc["n"] async for doc in cursor}


async def recount_stale(db: AsyncDatabase[Doc], now: datetime) -> int:
    """Recount the tallies counted longest ago (a few per call; the clock calls it
    every few seconds). Returns how many were recounted."""
    stale = db[COUNTERS].find(
        {"kind": "tally", "countedAt": {"$lt": now - RECOUNT_AFTER}},
        projection={"user": 1},
        limit=RECOUNT_BATCH,
    )
    users = [doc["user"] async for doc in stale]
    for user in users:
        await recount(db, user)
    return len(users)


async def number_unnumbered(db: AsyncDatabase[Doc]) -> int:
    """Give an ``n`` to every record stored before records were numbered, and count the
    tallies of their users: once, at the first start of a crmd that numbers them (a
    marker says it is done). Returns how many were numbered."""
    marker = {"_id": "migration:numbered"}
    if await db[COUNTERS].find_one(marker) is not None:
        return 0
    numbered = 0
    users: set[str] = set()
    for kind in NUMBERED:
        per_user: dict[str, list[Any]] = {}
        async for doc in db[kind].find(
            {"n": {"$exists": False}}, projection={"userId": 1, "createdAt": 1}
        ):
            per_user.setdefault(doc["userId"], []).append((doc.get("createdAt"), doc["_id"]))
        users.update(per_user)
        for user, docs in per_user.items():
            docs.sort(key=lambda d: (d[0] is None, d[0] or datetime.min, str(d[1])))
            first = await reserve(db, user, kind, len(docs))
            updates = [
                UpdateOne({"_id": _id}, {"$set": {"n": number}})
                for number, (_, _id) in enumerate(docs, start=first)
            ]
            for start in range(0, len(updates), 500):
                await db[kind].bulk_write(updates[start : start + 500], ordered=False)
            numbered += len(docs)
    for user in users:
        await recount(db, user)
    await db[COUNTERS].update_one(
        marker, {"$set": {"at": datetime.now(UTC), "numbered": numbered}}, upsert=True
    )
    if numbered:
        log.info("store.numbered", records=numbered)
    return numbered
