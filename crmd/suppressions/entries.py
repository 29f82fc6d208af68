"""The suppression list itself: one document per address per tenant (``suppressions``).

A document's ``_id`` is derived from its tenant and its address, so an address is on a
list at most once without an index of its own, and "which of these addresses are
suppressed" is a read by ``_id`` (the cheap way to ask SecantusDB for many documents).
Entries are numbered as they arrive (``crmd.store.numbering``): a page of the list is a
range of numbers, newest first, and the tenant's tally says how many there are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from crmd.emails import InvalidEmail, normalise_email
from crmd.store.documents import (
    SUPPRESSION_SOURCES,
    Suppression,
    SuppressionSource,
    decode,
    decode_all,
)
from crmd.store.tenant import TenantStore
from crmd.store.windows import newest
from crmd.store.writes import insert_new
from crmd.suppressions.erased import REASON as ERASED_REASON
from crmd.suppressions.erased import SOURCE as ERASURE
from crmd.suppressions.erased import ErasedAddresses, erased_id

COLLECTION = "suppressions"
MAX_REASON = 200
WRITE_BATCH = 1000
Source = SuppressionSource
SOURCES = SUPPRESSION_SOURCES


class Entry(msgspec.Struct, frozen=True):
    """An address to suppress, and why."""

    email: str
    reason: str = ""
    source: Source = "operator"
    campaignId: str | None = None
    customerId: str | None = None


def entry_id(user: str, email: str) -> str:
    """The ``_id`` of ``email`` on ``user``'s list: 24 hex characters."""
    return hashlib.sha256(f"{user}\x00suppression\x00{email}".encode()).hexdigest()[:24]


def address(raw: str) -> str | None:
    """The address in crmd's one spelling, or None when it is not an address."""
    try:
        return normalise_email(raw)
    except InvalidEmail:
        return None


async def suppress(store: TenantStore, entries: Iterable[Entry]) -> tuple[int, int]:
    """Put the addresses on the list (the first reason given for an address stays);
    returns how many were added and how many were there already. Safe to repeat."""
    unique: dict[str, Entry] = {}
    for entry in entries:
        email = address(entry.email)
        if email is not None and email not in unique:
            unique[email] = msgspec.structs.replace(
                entry, email=email, reason=entry.reason[:MAX_REASON]
            )
    added = there = 0
    todo = list(unique.values())
    for start in range(0, len(todo), WRITE_BATCH):
        new, old = await _insert(store, todo[start : start + WRITE_BATCH])
        added, there = added + new, there + old
    return added, there


async def _insert(store: TenantStore, entries: Sequence[Entry]) -> tuple[int, int]:
    ids = {entry_id(store.user_id, e.email): e for e in entries}
    known = {d["_id"] for d in await store[COLLECTION].by_ids(ids, projection={"_id": 1})}
    new = [(i, e) for i, e in ids.items() if i not in known]
    if not new:
        return 0, len(entries)
    first = await store.reserve(COLLECTION, len(new))
    now = datetime.now(UTC)
    docs = [
        {"_id": i, **msgspec.structs.asdict(e), "n": first + k, "createdAt": now}
        for k, (i, e) in enumerate(new)
    ]
    raced = await insert_new(store[COLLECTION].insert_many(docs))
    await store.add_to_tally(COLLECTION, len(docs) - len(raced))
    return len(docs) - len(raced), len(known) + len(raced)


UNDELIVERABLE = frozenset({"bounce", "complaint", "failure"})
"""The ways onto the list that stop even a transactional message: the address does not
take mail, or its owner called crmd's mail spam."""


async def suppressed_among(
    store: TenantStore,
    emails: Iterable[str],
    sources: frozenset[str] | None = None,
    erased: ErasedAddresses | None = None,
) -> dict[str, str]:
    """Which of ``emails`` (as stored: normalised) are on the list, each with why
    (``listed_because``); with ``sources``, only those put there one of those ways.
    With ``erased``, an erased customer's address is found by its hash too, whatever
    ``sources`` says (such a person is never messaged again). One read when the tenant
    has never suppressed anyone (the common case); else the smaller of the list and the
    question is read, in batches, never one address at a time."""
    wanted = {e for e in emails if e}
    if not wanted:
        return {}
    # The numbers given out bound the list's size from above, and are given out before
    # an entry is written: 0 means nobody was ever suppressed.
    listed = await store.highest(COLLECTION)
    if not listed:
        return {}

    def counts(entry: Suppression) -> bool:
        return sources is None or entry.source in sources or entry.source == ERASURE

    if listed <= len(wanted):
        everyone = store[COLLECTION].find({}, batch_size=WRITE_BATCH)
        listing = [decode(d, Suppression) async for d in everyone]
        found = {e.email: listed_because(e) for e in listing if e.email in wanted and counts(e)}
        hashes = {e.erased: e for e in listing if e.erased}
        if hashes and erased is not None:
            for email in wanted - found.keys():
                entry = hashes.get(erased.digest(store.user_id, email))
                if entry is not None:
                    found[email] = listed_because(entry)
        return found
    ids = {entry_id(store.user_id, e): e for e in wanted}
    if erased is not None:  # asked in the same reads as the plain entries
        ids.update({erased_id(store.user_id, erased.digest(store.user_id, e)): e for e in wanted})
    listing = decode_all(await store[COLLECTION].by_ids(ids), Suppression)
    return {ids[e.id]: listed_because(e) for e in listing if counts(e)}


def listed_because(entry: Suppression) -> str:
    """Why an address is not sent to, for its SUPPRESSED log: its entry's reason, else
    how it came on the list."""
    why = entry.reason or _SOURCES.get(entry.source, "added by an operator")
    return f"on the suppression list: {why}"[:MAX_REASON]


_SOURCES = {
    "unsubscribe": "unsubscribed",
    "bounce": "bounced",
    "complaint": "complained of spam",
    "failure": "refused for good",
    "operator": "added by an operator",
    "import": "imported from a file",
    ERASURE: ERASED_REASON,
}


async def suppress_erased(store: TenantStore, digest: str) -> bool:
    """Put an erased customer's address on the list as its hash ``digest``
    (``ErasedAddresses.digest``); False when it was there already. Safe to repeat."""
    _id = erased_id(store.user_id, digest)
    if await store[COLLECTION].find_one({"_id": _id}, projection={"_id": 1}):
        return False
    doc = {
        "_id": _id,
        "email": "",
        "erased": digest,
        "reason": "",
        "source": ERASURE,
        "n": await store.reserve(COLLECTION, 1),
        "createdAt": datetime.now(UTC),
    }
    added = not await insert_new(store[COLLECTION].insert_many([doc]))
    if added:
        await store.add_to_tally(COLLECTION, 1)
    return added


async def find(store: TenantStore, email: str) -> Suppression | None:
    """The address's entry, if it is on the list."""
    doc = await store[COLLECTION].find_one({"_id": entry_id(store.user_id, email)})
    return None if doc is None else decode(doc, Suppression)


async def remove(store: TenantStore, email: str) -> bool:
    """Take the address off the list; False when it was not on it."""
    gone = await store[COLLECTION].delete_one({"_id": entry_id(store.user_id, email)})
    await store.add_to_tally(COLLECTION, -gone.deleted_count)
    return bool(gone.deleted_count)


async def remove_where(store: TenantStore, source: Source | None, campaign: str | None) -> int:
    """Take off the list every entry that came ``source``'s way and from ``campaign``'s
    messages (None: any); how many were taken off. The undo of a mass suppression: a
    relay that refused a whole campaign's audience as dead addresses. An erased
    customer's entry is never taken off (``crmd.suppressions.erased``)."""
    where: dict[str, object] = {"source": {"$ne": ERASURE}}
    if source is not None and source != ERASURE:
        where["source"] = source
    elif source == ERASURE:  # an erased customer's entry stays for good
        return 0
    if campaign is not None:
        where["campaignId"] = campaign
    gone = await store[COLLECTION].delete_many(where)
    await store.add_to_tally(COLLECTION, -gone.deleted_count)
    return gone.deleted_count


@dataclass
class EntryPage:
    items: list[Suppression]
    next_before: int | None
    """Where the next page starts (None: nothing older)."""


async def newest_entries(store: TenantStore, before: int | None, limit: int) -> EntryPage:
    """A page of the list, newest first, below the number ``before`` (None: the top)."""
    top = await store.highest(COLLECTION)
    window = await newest(store[COLLECTION], top, before=before, limit=limit)
    return EntryPage(decode_all(window.items, Suppression), window.next_before)
